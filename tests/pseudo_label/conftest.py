"""Fixtures of the pseudo-label tests: tiny images, a fake teacher, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovdet.pseudo_label import PseudoLabelTeacher

MODEL = "ov-shapes-vild-text"
NUM_SHAPES = 6  # OV-Shapes images labelled by the shipped model


class FakeTeacher(PseudoLabelTeacher):
    """Three boxes per image, scores from the image's mean: cheap and deterministic."""

    classes = ["red circle", "blue star", "green square"]
    novel = ["green square"]

    def __init__(self) -> None:
        self.seen = 0

    def label(self, images):
        self.seen += len(images)
        out = []
        for img in images:
            h, w = img.shape[:2]
            m = float(img.mean()) / 255.0
            boxes = np.array(
                [[0, 0, w / 2, h / 2], [w / 4, h / 4, w, h], [1, 1, w - 1, h - 1]], np.float32
            )
            scores = np.array([0.9, 0.3 + 0.5 * m, 0.2], np.float32)
            out.append({"boxes": boxes, "scores": scores, "labels": np.array([0, 1, 2])})
        return out


def write_images(folder: Path, count: int, size=(24, 32)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"im{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def fake_teacher() -> FakeTeacher:
    return FakeTeacher()


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """A folder ``images/`` of 6 OV-Shapes images (64 px) and one corrupt file, and
    ``captions.json`` (file name -> the scene's captions)."""
    from ovdet.data.synthetic import OVShapesConfig, OVShapesGenerator

    root = tmp_path_factory.mktemp("shapes")
    (root / "images").mkdir()
    gen = OVShapesGenerator(OVShapesConfig(image_size=64))
    captions = {}
    for i in range(NUM_SHAPES):
        scene = gen.scene(0, "val", i)
        Image.fromarray(scene.image).save(root / "images" / f"s{i}.png")
        captions[f"s{i}.png"] = scene.captions
    (root / "images" / "s9_corrupt.png").write_bytes(b"not a png")
    (root / "captions.json").write_text(json.dumps(captions))
    return root


@pytest.fixture(scope="session")
def shipped_teacher():
    """The shipped model as a teacher (built once: loading it takes seconds)."""
    from ovdet.pseudo_label import build_detector_teacher

    teacher, _, _ = build_detector_teacher(model=MODEL, device="cpu", min_score=0.2)
    return teacher
