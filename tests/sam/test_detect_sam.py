"""SAM as the mask source of a detector: ``OVPredictor(sam=...)`` and ``ovdet detect --sam``
with the shipped ``ov-shapes-vild-text`` bundle and a tiny random SAM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from ovdet.cli import main as cli
from ovdet.demo import make_images
from ovdet.modeling.sam import BoxPromptedSAM, build_small_sam
from ovdet.predictor import OVPredictor
from ovdet.utils.image import load_image

MODEL = "ov-shapes-vild-text"
VOCAB = ["red circle", "blue square"]


@pytest.fixture(autouse=True)
def _no_user_models(monkeypatch):
    monkeypatch.delenv("OVDET_MODELS", raising=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    make_images(root, num_images=1, seed=5)
    return next((root / "images" / "val").iterdir())


@pytest.fixture(scope="module")
def sam_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("sam") / "small_sam.pth"
    torch.save(build_small_sam().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def predictor(sam_checkpoint) -> OVPredictor:
    sam = BoxPromptedSAM(build_small_sam(checkpoint=sam_checkpoint))
    return OVPredictor.from_pretrained(
        MODEL, device="cpu", vocabulary=VOCAB, score_thresh=0.3, sam=sam
    )


def test_predictor_returns_sam_masks_of_its_boxes(predictor, image):
    out = predictor.predict(image)
    rgb = load_image(image)
    n = len(out["boxes"])
    assert n > 0, "the detector finds the shapes"
    assert out["masks"].shape == (n, *rgb.shape[:2]) and out["masks"].dtype == bool
    assert out["mask_scores"].shape == (n,)
    expected = predictor.sam.predict(rgb, out["boxes"])
    np.testing.assert_array_equal(out["masks"], expected.masks.numpy())
    batch = predictor.predict_batch([image, rgb])
    assert all(np.array_equal(b["masks"], out["masks"]) for b in batch)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli(["detect", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_detect_with_sam_writes_its_masks_as_rle(
    predictor, image, sam_checkpoint, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["--model", MODEL, "--vocab", ",".join(VOCAB), "--input", str(image)]
    args += ["--output", str(out), "--device", "cpu"]
    rc, stdout, err = run(capsys, *args, "--sam", f"small:{sam_checkpoint}")
    assert rc == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results and all("segmentation" in r for r in results)
    masks = np.stack([mask_utils.decode(r["segmentation"]) for r in results]).astype(bool)
    pred = predictor.predict(image)  # the same detector, the same SAM
    np.testing.assert_allclose([r["score"] for r in results], pred["scores"], atol=1e-5)
    np.testing.assert_array_equal(masks, pred["masks"])
    written = np.array([r["bbox"] for r in results], dtype=np.float64)
    written[:, 2:] += written[:, :2]  # the written boxes, back to XYXY
    again = predictor.sam.predict(load_image(image), written).masks.numpy()
    assert (again != masks).mean() < 1e-4
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["sam"]["type"] == "small" and settings["sam"]["file"] == str(sam_checkpoint)
    assert len(list((out / "vis").glob("*.png"))) == 1

    # the same command resumes; another SAM (or none) into that folder is refused
    rc, stdout, _ = run(capsys, *args, "--sam", str(sam_checkpoint))  # type inferred: same
    assert rc == 0 and json.loads(stdout)["resumed"] == 1
    other = tmp_path / "other.pth"
    torch.save(build_small_sam().state_dict(), other)
    rc, _, err = run(capsys, *args, "--sam", f"small:{other}")
    assert rc == 2 and "holds another detect run" in err and "SAM (--sam)" in err
    rc, _, err = run(capsys, *args)
    assert rc == 2 and f"SAM (--sam): small:{sam_checkpoint} vs none" in err


@pytest.mark.parametrize(
    "spec, words",
    [
        ("vit_q:{ckpt}", "unknown SAM type 'vit_q'"),
        ("vit_b:{missing}", "not found"),
        ("vit_l:{ckpt}", "does not fit SAM type 'vit_l'"),
    ],
)
def test_detect_refuses_bad_sam_specs_in_one_line(
    image, sam_checkpoint, tmp_path, capsys, spec, words
):
    spec = spec.format(ckpt=sam_checkpoint, missing=tmp_path / "nope.pth")
    out = tmp_path / "out"
    rc, _, err = run(
        capsys, "--model", MODEL, "--input", str(image), "--output", str(out), "--sam", spec
    )
    assert rc == 2
    first = err.splitlines()[0]
    assert first.startswith(f"ovdet detect: error: --sam {spec}: ") and words in first, err
    assert not (out / "run.json").exists()
