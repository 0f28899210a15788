"""``ovdet detect --model`` end to end with the shipped default model (no --config, no
--weights, no --vocab), its run manifest, and ``OVPredictor.from_pretrained``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ovdet.cli import main as cli
from ovdet.demo import make_images
from ovdet.model_zoo import DEFAULT_MODEL, get_model, shipped_models_dir
from ovdet.predictor import OVPredictor


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> tuple[Path, dict]:
    """Two new OV-Shapes images (a seed no shipped model saw) and their ground truth."""
    root = tmp_path_factory.mktemp("shapes")
    gt = make_images(root, num_images=2, seed=11)
    return root / "images" / "val", gt


@pytest.fixture(scope="module")
def predictor() -> OVPredictor:
    return OVPredictor.from_pretrained(device="cpu", score_thresh=0.3)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli(["detect", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_detect_with_the_default_model_and_nothing_else(shapes, predictor, tmp_path, capsys):
    images, gt = shapes
    out = tmp_path / "out"
    rc, stdout, err = run(capsys, "--input", str(images), "--output", str(out), "--device", "cpu")
    assert rc == 0, err
    summary = json.loads(stdout)
    assert summary["model"] == DEFAULT_MODEL and summary["images"] == 2
    spec = get_model()
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["model"] == spec.identity() and settings["model"]["name"] == DEFAULT_MODEL
    assert settings["vocabulary"]["names"] == spec.classes  # default: the model's classes
    assert settings["weights"] is None and settings["config"]["sha256"] is None
    # the same detections as the predictor of that model (score >= 0.3, the default)
    results = json.loads((out / "results.json").read_text())
    names = {c["id"]: c["name"] for c in gt["categories"]}
    gt_ids = {img["file_name"]: img["id"] for img in gt["images"]}
    for image_id, img in enumerate(sorted(images.iterdir()), start=1):
        pred = predictor.predict(img)
        mine = [r for r in results if r["image_id"] == image_id]
        assert [r["category_name"] for r in mine] == pred["class_names"]
        np.testing.assert_allclose([r["score"] for r in mine], pred["scores"], atol=1e-5)
        anns = [a for a in gt["annotations"] if a["image_id"] == gt_ids[img.name]]
        truth = {names[a["category_id"]] for a in anns}
        assert set(pred["class_names"]) & truth, (pred["class_names"], truth)  # it finds them
    assert len(list((out / "vis").glob("*.png"))) == 2

    # the same command resumes; another model into that folder is refused, naming both
    rc, stdout, _ = run(capsys, "--input", str(images), "--output", str(out), "--device", "cpu")
    assert rc == 0 and json.loads(stdout)["resumed"] == 2
    rc, _, err = run(
        capsys, "--model", "ov-shapes-vild-text", "--input", str(images), "--output", str(out)
    )
    assert rc == 2 and "holds another detect run" in err
    assert f"model: {DEFAULT_MODEL} (bundle" in err and "vs ov-shapes-vild-text (bundle" in err


def test_detect_model_by_path_with_a_vocabulary(shapes, tmp_path, capsys):
    images, _ = shapes
    folder = shipped_models_dir() / "ov-shapes-vild-text"
    args = ["--model", str(folder), "--vocab", "red circle,blue star", "--score-thresh", "0.05"]
    rc, stdout, err = run(capsys, *args, "--input", str(images), "--output", str(tmp_path / "o"))
    assert rc == 0, err
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert {r["category_name"] for r in results} <= {"red circle", "blue star"}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "best-model"], r"unknown model 'best-model'; known models: shipped: "
         rf"{DEFAULT_MODEL}, .*ov-shapes-vild-text"),
        (["--model", DEFAULT_MODEL, "--config", "c.py"], "--model and --config/--weights exclude"),
        (["--weights", "w.pth"], "--weights needs --config"),
        (["model.roi_heads.batch_size_per_image=8"], r"config overrides .* need --config"),
    ],
    ids=["unknown", "model-and-config", "weights-alone", "overrides"],
)  # fmt: skip
def test_detect_model_refused(shapes, tmp_path, capsys, extra, message):
    import re

    images, _ = shapes
    rc, out, err = run(capsys, "--input", str(images), "--output", str(tmp_path / "o"), *extra)
    assert rc == 2 and not out
    line = err.strip().splitlines()[-2]
    assert line.startswith("ovdet detect: error: ") and re.search(message, line), line
    assert not (tmp_path / "o" / "run.json").exists()


def test_from_pretrained_vocabulary_switching(shapes, predictor):
    images, _ = shapes
    image = sorted(images.iterdir())[0]
    spec = get_model()
    assert predictor.spec == spec and predictor.vocabulary == spec.classes
    full = predictor.predict(image)
    two = predictor.predict(image, vocabulary=["red circle", "blue star"], score_thresh=0.0)
    assert set(two["class_names"]) <= {"red circle", "blue star"}
    assert predictor.vocabulary == ["red circle", "blue star"]
    again = predictor.predict(image, vocabulary=spec.classes)  # back: the same detections
    np.testing.assert_array_equal(again["scores"], full["scores"])
    assert again["class_names"] == full["class_names"]
    # vocabulary= and a score threshold under the model's own (0.01) on construction
    low = OVPredictor.from_pretrained(
        "ov-shapes-vild-text", device="cpu", vocabulary=["red circle"], score_thresh=0.001
    )
    assert low.spec.name == "ov-shapes-vild-text" and low.vocabulary == ["red circle"]
    assert low.model.roi_heads.box_predictor.test_score_thresh == 0.001
    assert tuple(low.resize.short_edge_length) == (160, 160)
