"""Model cards: a user's checkpoint registered by a JSON file (paths relative to the card),
found by path or through ``$OVDET_MODELS``; clear errors for missing fields and files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet.model_zoo import get_model, list_models, read_card
from ovdet.predictor import OVPredictor
from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings, save_class_embeddings
from ovdet.text.clip_models import tiny_clip_config
from ovdet.utils.errors import InputError

ROOT = Path(__file__).resolve().parents[2]

# a config that gives the classifier no embeddings (as a bundle's detector.yaml): the card's
# text encoder and vocabulary do
CONFIG = f"""
from detectron2.config import LazyConfig
from detectron2.config import LazyCall as L
from detectron2.data import transforms as T

model = LazyConfig.load({str(ROOT / "configs/common/models/ov_rcnn_small_fpn.py")!r}).model
model.roi_heads.box_predictor.classifier.train_embeddings = None
model.roi_heads.box_predictor.classifier.temperature = 1.0
model.roi_heads.box_predictor.test_topk_per_image = 3
dataloader = dict(test=dict(mapper=dict(augmentations=[
    L(T.ResizeShortestEdge)(short_edge_length=64, max_size=96)])))
"""


@pytest.fixture(scope="module")
def user_model(tmp_path_factory) -> Path:
    """A user's folder: model/cfg.py, model/weights.pth, clip/clip.json + clip.pt, classes.txt,
    embeddings; the cards are written by the tests."""
    from detectron2.config import instantiate

    from ovdet.engine.build import load_config

    root = tmp_path_factory.mktemp("user")
    (root / "model").mkdir()
    (root / "clip").mkdir()
    (root / "model" / "cfg.py").write_text(CONFIG)
    (root / "clip" / "clip.json").write_text(json.dumps(tiny_clip_config(embed_dim=16)))
    encoder = OpenCLIPTextEncoder.from_config(root / "clip" / "clip.json", seed=0, device="cpu")
    torch.save(encoder.module.state_dict(), root / "clip" / "clip.pt")
    cfg = load_config(root / "model" / "cfg.py")
    cfg.model.roi_heads.box_predictor.classifier.train_embeddings = torch.randn(2, 16)
    torch.manual_seed(0)
    torch.save({"model": instantiate(cfg.model).state_dict()}, root / "model" / "weights.pth")
    (root / "classes.txt").write_text("cat\ndog\n")
    emb = build_class_embeddings(encoder, ["fox", "owl", "bat"], ["a {}."])
    save_class_embeddings(root / "animals.npy", emb, ["fox", "owl", "bat"])
    return root


def write_card(folder: Path, file: str, **fields) -> Path:
    path = folder / f"{file}.json"
    path.write_text(json.dumps({"name": file, **fields}))
    return path


def encoder_card(root: Path, name: str = "my-detector", **extra) -> Path:
    return write_card(
        root,
        name,
        description="my tiny detector",
        config="model/cfg.py",
        weights="model/weights.pth",
        text_encoder="open_clip-config:clip/clip.json:clip/clip.pt",
        templates="single",
        vocabulary="classes.txt",
        base=["cat"],
        novel=["dog"],
        metrics={"AP50_base": 1.5, "AP50_novel": 0.5, "dataset": "nothing real"},
        **extra,
    )


def test_card_with_relative_paths(user_model, monkeypatch):
    monkeypatch.chdir("/")  # paths are relative to the card, not the working directory
    card = read_card(encoder_card(user_model))
    assert card.config == user_model / "model" / "cfg.py"
    assert card.weights == user_model / "model" / "weights.pth"
    clip = user_model / "clip"
    assert card.text_encoder == f"open_clip-config:{clip / 'clip.json'}:{clip / 'clip.pt'}"
    spec = get_model(user_model / "my-detector.json")
    assert (spec.name, spec.kind, spec.classes) == ("my-detector", "card", ["cat", "dog"])
    assert (spec.base, spec.novel, spec.metrics["AP50_base"]) == (["cat"], ["dog"], 1.5)
    loaded = spec.load(device="cpu")
    assert loaded.model.vocabulary == ["cat", "dog"] and loaded.spec == spec
    assert loaded.resize.short_edge_length == (64, 64)
    # the card's encoder is the one the weights were saved beside: the same embeddings
    expected = build_class_embeddings(loaded.text_encoder, ["cat", "dog"], ["a {}."])
    torch.testing.assert_close(loaded.model.roi_heads.get_vocabulary(), expected)

    predictor = OVPredictor.from_pretrained(str(spec.path), device="cpu", score_thresh=0.0)
    assert predictor.spec == spec and predictor.vocabulary == ["cat", "dog"]
    image = np.random.RandomState(0).randint(0, 255, (48, 64, 3), dtype=np.uint8)
    out = predictor.predict(image, vocabulary=["zebra", "kite"])
    assert len(out["scores"]) > 0 and set(out["class_names"]) <= {"zebra", "kite"}


def test_card_errors(user_model):
    def card(**fields):
        return write_card(user_model, "bad", **fields)

    good = {"config": "model/cfg.py", "weights": "model/weights.pth"}
    with pytest.raises(InputError, match=r"bad\.json: missing field\(s\) \['weights'\]"):
        read_card(card(config="model/cfg.py"))
    with pytest.raises(InputError, match=r"unknown field\(s\) \['wieghts'\]"):
        read_card(card(**good, wieghts="x"))
    with pytest.raises(InputError, match=r"field 'overrides' must be a list"):
        read_card(card(**good, overrides="a=1"))
    with pytest.raises(FileNotFoundError, match=r"config .*model/nope\.py not found .*relative"):
        read_card(card(config="model/nope.py", weights="model/weights.pth"))
    with pytest.raises(
        FileNotFoundError, match=r"laion2b_s34b_b79k not found .*not a tag.*downloads"
    ):
        read_card(card(**good, text_encoder="open_clip:ViT-B-32:laion2b_s34b_b79k"))
    with pytest.raises(InputError, match="has no weights"):
        read_card(card(**good, text_encoder="open_clip:ViT-B-32"))
    with pytest.raises(InputError, match=r"templates: unknown template set 'fancy'"):
        read_card(card(**good, templates="fancy"))
    with pytest.raises(InputError, match=r"name 'my model' must be letters"):
        read_card(write_card(user_model, "ok", name="my model", **good))
    with pytest.raises(InputError, match=r"\['elk'\] are not rows of the embeddings"):
        read_card(card(**good, embeddings="animals.npy", vocabulary=["fox", "elk"]))
    (user_model / "broken.json").write_text("{")
    with pytest.raises(InputError, match=r"broken\.json is not readable JSON"):
        get_model(user_model / "broken.json")
    # a config without embeddings and a card without a vocabulary: said, not 'NoneType'
    spec = get_model(card(**good))
    with pytest.raises(InputError, match="gives the classifier no class embeddings"):
        spec.load(device="cpu")


def test_embeddings_card_has_a_fixed_vocabulary(user_model):
    spec = get_model(
        write_card(
            user_model,
            "fixed",
            config="model/cfg.py",
            weights="model/weights.pth",
            embeddings="animals.npy",
            vocabulary=["owl", "fox"],
        )
    )
    assert spec.classes == ["owl", "fox"]
    predictor = OVPredictor.from_pretrained(str(spec.path), device="cpu")
    assert predictor.vocabulary == ["owl", "fox"] and predictor.model.text_encoder is None
    with pytest.raises(InputError, match="no text encoder"):
        predictor.set_vocabulary(["cat"])


def test_models_from_environment(user_model, tmp_path, monkeypatch, capsys):
    from ovdet.cli import main as cli

    cards = tmp_path / "cards"
    cards.mkdir()
    for name in ("zeta", "alpha"):  # cards elsewhere: their paths point back at the files
        encoder_card(user_model, name)
        (cards / f"{name}.json").write_text(
            (user_model / f"{name}.json")
            .read_text()
            .replace('"model/', f'"{user_model}/model/')
            .replace('"clip/', f'"{user_model}/clip/')
            .replace(":clip/", f":{user_model}/clip/")
            .replace('"classes.txt"', f'"{user_model}/classes.txt"')
        )
    single = encoder_card(user_model, "solo")
    monkeypatch.setenv("OVDET_MODELS", os.pathsep.join([str(cards), str(single)]))
    names = [s.name for s in list_models()]
    shipped = [s.name for s in list_models() if s.kind == "bundle"]
    assert names == shipped + ["alpha", "zeta", "solo"]
    assert get_model("alpha").path == cards / "alpha.json"
    assert get_model("solo").classes == ["cat", "dog"]
    assert cli(["models"]) == 0
    table = capsys.readouterr().out
    assert "alpha" in table and "card" in table and "my tiny detector" in table
    # a card named like another model, a missing entry: named
    (cards / "dup.json").write_text(
        json.dumps({"name": "ov-shapes-vild-text", **_good(user_model)})
    )
    with pytest.raises(InputError, match=r"dup\.json .* is named 'ov-shapes-vild-text'"):
        list_models()
    (cards / "dup.json").unlink()
    monkeypatch.setenv("OVDET_MODELS", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match=r"\$OVDET_MODELS lists .*nothing"):
        list_models()


def _good(root: Path) -> dict[str, str]:
    return {"config": str(root / "model/cfg.py"), "weights": str(root / "model/weights.pth")}
