"""A tiny random SAM (segment_anything's own classes, 256-pixel input) and a COCO photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ovdet.modeling.sam import BoxPromptedSAM, build_small_sam


@pytest.fixture(scope="module")
def small_sam():
    torch.manual_seed(0)
    return build_small_sam()


@pytest.fixture(scope="module")
def boxed(small_sam) -> BoxPromptedSAM:
    return BoxPromptedSAM(small_sam, device="cpu")


@pytest.fixture(scope="session")
def photo(test_data) -> np.ndarray:
    """A real COCO photo, 480 x 640, HWC uint8 RGB."""
    path = test_data / "coco_sample" / "images" / "000000000089.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="session")
def boxes(photo) -> np.ndarray:
    """5 boxes (XYXY): inside, small, at the bottom-right border, the whole image, thin."""
    h, w = photo.shape[:2]
    return np.array(
        [
            [10, 20, 200, 300],
            [100.5, 100.25, 150, 180],
            [w - 50, h - 60, w, h],
            [0, 0, w, h],
            [30.5, 40.2, 90.7, 44.0],
        ],
        dtype=np.float64,
    )
