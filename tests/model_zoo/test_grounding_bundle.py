"""Bundles of Grounding R-CNN runs: a tiny OV-Shapes grounding detector trained 2 iterations,
exported as the benchmark's ``--export-method grounding_eot`` does, loads on its own, predicts
as trained (up to fp16 rounding), changes vocabulary, and loads by name and by path
(``OVPredictor.from_pretrained``, ``ovdet models``, ``ovdet detect --model``)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet.cli import main as cli
from ovdet.model_zoo import get_model, load_bundle, verify_bundle
from ovdet.utils.errors import InputError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAME = "ov-shapes-tiny-grounding"
METRIC_KEYS = {"AP50_base", "AP50_novel", "AP50", "AP"}


@pytest.fixture(scope="module")
def grounding_export(tmp_path_factory):
    """A random tiny CLIP teacher, a tiny OV-Shapes root, grounding_eot trained 2 iterations
    and its bundle in ``<tmp>/models/ov-shapes-tiny-grounding``."""
    from ovdet.data.synthetic import generate_ov_shapes
    from ovdet.engine.build import load_config
    from ovdet.engine.train import train_and_evaluate
    from ovdet.model_zoo import export_bundle
    from ovdet.text.clip_models import create_clip_from_config, tiny_clip_config

    tmp = tmp_path_factory.mktemp("grounding_bundle")
    teacher = tmp / "teacher" / "teacher.pt"
    teacher.parent.mkdir()
    clip_cfg = tiny_clip_config(embed_dim=16)
    torch.save(create_clip_from_config(clip_cfg, seed=0).state_dict(), teacher)
    teacher.with_suffix(".json").write_text(json.dumps(clip_cfg))
    root = tmp / "data"
    generate_ov_shapes(root, num_train=4, num_val=2, seed=5, progress=False)
    cfg = load_config(
        CONFIGS / "ov_shapes" / "grounding_eot_small.py",
        [
            f"ov_shapes.root={root}",
            f"ov_shapes.teacher={teacher}",
            "ov_shapes.prefix=grounding_bundle_test",
            "ov_shapes.image_size=64",
            "train.max_iter=2",
            f"train.output_dir={tmp / 'out'}",
            "train.checkpointer.period=10",
            "train.device=cpu",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
            "model.roi_heads.box_predictor.test_topk_per_image=10",  # fewer masks to paste
        ],
    )
    result = train_and_evaluate(cfg)
    bbox = result["test"]["bbox"]
    run = {"iterations": 2, "seed": 0, **{k: bbox[k] for k in METRIC_KEYS}}
    manifest = export_bundle(
        tmp / "models" / NAME,
        cfg=cfg,
        detector_checkpoint=tmp / "out" / "model_final.pth",
        teacher_checkpoint=teacher,
        data_root=root,
        method="grounding_eot",
        command="pytest grounding run",
        metrics={"teacher": {"steps": 0}, "grounding_eot": run},
    )
    return tmp, cfg, manifest


def _trained(tmp: Path, cfg):
    """The detector as trained, rebuilt from its config (not from the bundle), weights and
    teacher text tower rounded to fp16 as the bundle ships them."""
    from ovdet.engine.build import build_model
    from ovdet.text import OpenCLIPTokenEncoder
    from ovdet.text.clip_models import create_clip_from_config, create_clip_tokenizer

    def half(state):
        return {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}

    clip_cfg = json.loads((tmp / "teacher" / "teacher.json").read_text())
    tower = create_clip_from_config(clip_cfg, seed=0)
    tower.load_state_dict(half(torch.load(tmp / "teacher" / "teacher.pt", weights_only=True)))
    model = build_model(cfg, "cpu")
    model.token_encoder = OpenCLIPTokenEncoder(
        tower.eval(), create_clip_tokenizer(clip_cfg), device="cpu", template="a {}."
    )
    state = torch.load(tmp / "out" / "model_final.pth", weights_only=True)["model"]
    model.load_state_dict(half(state))
    model.roi_heads.box_predictor.test_score_thresh = 0.0
    return model.eval()


def test_grounding_bundle_files(grounding_export):
    from detectron2.config import LazyConfig

    from ovdet.model_zoo.export import _token_encoder_settings

    tmp, cfg, exported = grounding_export
    folder = tmp / "models" / NAME
    manifest = verify_bundle(folder)
    assert manifest == exported
    assert (manifest["name"], manifest["method"]) == (NAME, "grounding_eot")
    assert manifest["token_encoder"] == {"template": "a {}.", "max_tokens": 256}
    assert set(manifest["metrics"]["shipped_model_val"]) == METRIC_KEYS
    text = (folder / "detector.yaml").read_text()
    assert "${" not in text and "ov_shapes_class_names" not in text
    model = LazyConfig.load(str(folder / "detector.yaml")).model
    assert model.token_encoder is None and model.vocabulary is None
    assert list(model.train_vocabulary) == manifest["base"]
    assert model.roi_heads.box_predictor.num_classes == len(manifest["base"])
    readme = (folder / "README.md").read_text()
    assert "Grounding R-CNN, EOT readout" in readme and "`a {}.`" in readme
    # the text tower shipped must be the one the detector read its prompts with
    with pytest.raises(InputError, match="export with the teacher the detector was trained"):
        _token_encoder_settings(cfg, tmp / "other" / "teacher.pt")


def test_grounding_bundle_predicts_as_trained(grounding_export):
    from detectron2.data import transforms as T

    from ovdet.methods.grounding import GroundingRCNN
    from ovdet.predictor import OVPredictor

    tmp, cfg, manifest = grounding_export
    bundle = load_bundle(tmp / "models" / NAME)
    assert isinstance(bundle.model, GroundingRCNN)
    assert bundle.text_encoder is bundle.model.token_encoder
    assert bundle.model.vocabulary == manifest["classes"]
    bundle.model.roi_heads.box_predictor.test_score_thresh = 0.0
    resize = T.ResizeShortestEdge([64, 64], max_size=64)
    ours = OVPredictor(bundle.model, resize=resize, device="cpu")
    theirs = OVPredictor(_trained(tmp, cfg), resize=resize, device="cpu")
    assert theirs.vocabulary == manifest["classes"]
    images = sorted((tmp / "data" / "images" / "val").glob("*.png"))
    for image in images[:2]:
        a, b = ours.predict(image), theirs.predict(image)
        assert len(a["scores"]) > 0
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(a["boxes"], b["boxes"], rtol=0, atol=1e-3)
        assert a["class_names"] == b["class_names"]
    two = ours.predict(images[0], vocabulary=["red circle", "blue star"])
    assert len(two["scores"]) > 0 and set(two["class_names"]) <= {"red circle", "blue star"}
    assert bundle.model.vocabulary == ["red circle", "blue star"]


def test_grounding_bundle_refuses_changed_files(grounding_export, tmp_path):
    tmp, _, _ = grounding_export
    folder = tmp_path / NAME
    shutil.copytree(tmp / "models" / NAME, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    # a class whose prompt needs a token the pruned table does not keep
    changed = {**manifest, "classes": [*manifest["classes"], "giraffe"]}
    (folder / "manifest.json").write_text(json.dumps(changed))
    with pytest.raises(InputError, match=r"'a giraffe\.': \['giraffe</w>'\]; export the bundle"):
        load_bundle(folder)
    (folder / "manifest.json").write_text(
        json.dumps({k: v for k, v in manifest.items() if k != "token_encoder"})
    )
    with pytest.raises(InputError, match="manifest.json has no token_encoder.template"):
        load_bundle(folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with (folder / "detector.safetensors").open("r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\0")
    with pytest.raises(InputError, match=r"detector.safetensors does not match its sha256"):
        load_bundle(folder)


def test_grounding_bundle_by_name_and_path(grounding_export, monkeypatch, tmp_path, capsys):
    from ovdet.predictor import OVPredictor

    tmp, _, manifest = grounding_export
    models = tmp / "models"
    monkeypatch.setattr("ovdet.model_zoo.registry.shipped_models_dir", lambda: models)
    spec = get_model(NAME)
    assert (spec.kind, spec.path, spec.classes) == ("bundle", models / NAME, manifest["classes"])
    predictor = OVPredictor.from_pretrained(NAME, device="cpu", score_thresh=0.0)
    assert predictor.spec == spec and predictor.vocabulary == manifest["classes"]
    assert tuple(predictor.resize.short_edge_length) == (64, 64)
    image = sorted((tmp / "data" / "images" / "val").glob("*.png"))[0]
    assert len(predictor.predict(image)["scores"]) > 0
    out = predictor.predict(image, vocabulary=["green square"])
    assert set(out["class_names"]) <= {"green square"}
    # a word the pruned text tower does not know is refused, the vocabulary stays
    with pytest.raises(InputError, match=rf"model bundle {NAME} cannot encode 'giraffe'"):
        predictor.predict(image, vocabulary=["green square", "giraffe"])
    assert predictor.vocabulary == ["green square"]

    listed = io.StringIO()
    with contextlib.redirect_stdout(listed):
        assert cli(["models", "--json"]) == 0
    (record,) = json.loads(listed.getvalue())
    assert (record["name"], record["kind"]) == (NAME, "bundle")

    argv = ["detect", "--model", str(models / NAME), "--vocab", "red circle,blue star"]
    argv += ["--score-thresh", "0", "--input", str(image), "--output", str(tmp_path / "o")]
    argv += ["--no-vis", "--device", "cpu"]
    assert cli(argv) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results and {r["category_name"] for r in results} <= {"red circle", "blue star"}
