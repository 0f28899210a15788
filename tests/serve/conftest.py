"""Fixtures of the ``ovdet serve`` tests: a fake predictor (no model), a running server around
it, request helpers, and the shipped model the browser test serves."""

from __future__ import annotations

import io
import json
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

CLASSES = ["red circle", "blue square", "green star", "yellow cross"]
BASE = ["red circle", "blue square"]


class FakePredictor:
    """Stands in for ``OVPredictor``: deterministic detections derived from the vocabulary and
    the image size, optional masks, and a record of how many calls overlapped.

    Each vocabulary name ``i`` gives one box ``[4i, 4i, 4i + w/2, 4i + h/2]`` scored
    ``0.9 - 0.2 i``.
    """

    def __init__(self, *, masks: bool = True, delay: float = 0.0) -> None:
        self.spec = types.SimpleNamespace(
            name="fake-model",
            description="a fake model for tests",
            kind="bundle",
            path="/nowhere",
            classes=list(CLASSES),
            base=list(BASE),
            novel=[c for c in CLASSES if c not in BASE],
            metrics={"AP50_novel": 12.5, "dataset": "nothing"},
            image_size=None,
            source="tests",
        )
        self.masks = masks
        self.delay = delay
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self._vocabulary = list(CLASSES)
        self._count = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.calls = 0

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    def predict(self, image, vocabulary=None, score_thresh=None):
        with self._count:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls += 1
        self.entered.set()
        try:
            self.hold.wait(10)
            time.sleep(self.delay)
            if vocabulary is not None:
                self._vocabulary = list(vocabulary)
            h, w = image.shape[:2]
            n = len(self._vocabulary)
            scores = np.array([0.9 - 0.2 * i for i in range(n)], dtype=np.float32)
            boxes = np.array(
                [[4 * i, 4 * i, 4 * i + w / 2, 4 * i + h / 2] for i in range(n)], dtype=np.float32
            )
            keep = scores >= (score_thresh or 0.0)
            out = {
                "boxes": boxes[keep],
                "scores": scores[keep],
                "labels": np.arange(n)[keep],
                "class_names": [c for c, k in zip(self._vocabulary, keep) if k],
                "image_size": (h, w),
            }
            if self.masks:
                masks = np.zeros((n, h, w), dtype=bool)
                for i in range(n):
                    masks[i, 4 * i : 4 * i + h // 2, 4 * i : 4 * i + w // 2] = True
                out["masks"] = masks[keep]
            return out
        finally:
            with self._count:
                self.active -= 1


def png_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def body(data: bytes, **fields) -> bytes:
    """A ``/api/detect`` body: the fields as a json line, a newline, the image file."""
    return json.dumps(fields).encode() + b"\n" + data


def post_detect(
    url: str, data: bytes, *, content_type: str = "application/x-ovdet-detect"
) -> tuple[int, dict]:
    """POST a body to ``/api/detect``; return (status, json answer) whatever the status."""
    req = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def fake_predictor() -> FakePredictor:
    return FakePredictor()


@pytest.fixture
def fake_server(fake_predictor) -> Iterator:
    """A served app around :class:`FakePredictor`, default limits; ``.url`` and ``.predictor``."""
    from ovdet.serve import BackgroundServer, create_app

    with BackgroundServer(create_app(fake_predictor)) as server:
        server.predictor = fake_predictor
        yield server
