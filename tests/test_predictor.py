"""OVPredictor: output format, original-resolution boxes, image kinds, vocabulary switching."""

from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig

from ovdet.predictor import OVPredictor
from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings
from ovdet.text.clip_models import tiny_clip_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def predictor():
    cfg = LazyConfig.load(str(ROOT / "configs/common/models/ov_rcnn_small_fpn.py"))
    encoder = L(OpenCLIPTextEncoder.from_config)(
        config=tiny_clip_config(embed_dim=16), seed=0, device="cpu"
    )
    cfg.model.text_encoder = encoder
    cls = cfg.model.roi_heads.box_predictor.classifier
    cls.train_embeddings = L(build_class_embeddings)(
        encoder=encoder, classes=["cat", "dog"], templates=["a {}."]
    )
    cls.temperature = 1.0  # random weights: keep class scores away from underflow
    cfg.model.vocabulary = ["cat", "dog"]
    torch.manual_seed(0)
    return OVPredictor.from_config(
        cfg, None, device="cpu", min_size=64, max_size=96, score_thresh=0.0
    )


def test_output_format_and_original_coordinates(predictor):
    image = np.random.RandomState(0).randint(0, 256, (120, 200, 3), dtype=np.uint8)
    out = predictor.predict(image)
    assert set(out) >= {"boxes", "scores", "labels", "class_names", "image_size", "masks"}
    n = len(out["scores"])
    assert n > 0 and out["boxes"].shape == (n, 4) and out["masks"].shape == (n, 120, 200)
    assert out["image_size"] == (120, 200)
    assert (out["boxes"][:, 2] <= 200 + 1e-3).all() and (out["boxes"][:, 3] <= 120 + 1e-3).all()
    assert np.all(np.diff(out["scores"]) <= 0)
    assert set(out["class_names"]) <= {"cat", "dog"}


def test_image_kinds_and_vocabulary_switch(predictor):
    rgb = np.random.RandomState(1).randint(0, 256, (80, 90, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((80, 90, 1), 255, np.uint8)], axis=2)
    gray16 = rgb[:, :, 0].astype(np.uint16) * 257
    for img in (rgba, gray16):
        assert predictor.predict(img)["image_size"] == (80, 90)
    names = ["zebra", "teapot", "kite"]
    out = predictor.predict(rgb, vocabulary=names)
    assert predictor.vocabulary == names
    # the classifier now scores the text embeddings of exactly these names, in this order
    expected = build_class_embeddings(predictor.model.text_encoder, names, ["a {}."])
    torch.testing.assert_close(predictor.model.roi_heads.get_vocabulary(), expected)
    assert len(out["labels"]) > 0
    assert out["class_names"] == [names[i] for i in out["labels"]]
    # the order of the vocabulary does not change what each box is called
    reordered = predictor.predict(rgb, vocabulary=["kite", "zebra", "teapot"])

    def detections(o):
        rows = zip(o["scores"].round(5), map(tuple, o["boxes"].round(2)), o["class_names"])
        return sorted(rows)

    assert detections(reordered) == detections(out)
    assert predictor.predict(rgb, vocabulary=["cat", "dog"])["class_names"] != out["class_names"]
    with pytest.raises(ValueError, match="empty"):
        predictor.predict(rgb, vocabulary=[])
    with pytest.raises(ValueError, match="uplicate"):
        predictor.predict(rgb, vocabulary=["cat", "cat"])
    # a vocabulary given as embeddings of the wrong dimension names both sizes
    with pytest.raises(ValueError, match="16"):
        predictor.set_vocabulary(torch.randn(3, 8))


def test_detect_vocabulary_from_embedding_file(predictor, tmp_path):
    from ovdet.detect import resolve_detect_vocabulary
    from ovdet.text import save_class_embeddings

    emb = torch.nn.functional.normalize(torch.randn(2, 16), dim=1)
    path = save_class_embeddings(tmp_path / "v.npy", emb, names=["fox", "owl"])
    names_file = tmp_path / "v.names.txt"
    assert names_file.is_file()
    names, loaded, identity = resolve_detect_vocabulary(
        embeddings=str(path), names_file=str(names_file)
    )
    assert names == ["fox", "owl"] and identity["names"] == names
    torch.testing.assert_close(loaded, emb)
    # without --names-file the sidecar written by embed-text names the rows
    assert resolve_detect_vocabulary(embeddings=str(path))[0] == ["fox", "owl"]
    predictor.set_vocabulary(loaded, names=names)
    assert predictor.vocabulary == ["fox", "owl"]
