"""Region-teacher geometry: box enlargement, integer crops, and the checks on images and boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ovdet.teacher.geometry import check_boxes, expand_boxes, pixel_crop_boxes, to_uint8_hwc


def test_expand_boxes_scales_about_centre_and_clips():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 50.0], [90.0, 70.0, 100.0, 80.0]])
    out = expand_boxes(boxes, 1.5, (80, 100))  # (H, W)
    # box 0: centre (20, 30), half sizes 15 x 30 -> (5, 0, 35, 60)
    # box 1: centre (95, 75), half sizes 7.5 x 7.5 -> (87.5, 67.5, 102.5, 82.5) -> clipped
    expected = torch.tensor([[5.0, 0.0, 35.0, 60.0], [87.5, 67.5, 100.0, 80.0]], dtype=out.dtype)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(expand_boxes(boxes, 1.0, (80, 100)), boxes.double())
    # clipping: a box spilling out on the left/top is cut at 0
    torch.testing.assert_close(
        expand_boxes(torch.tensor([[0.0, 0.0, 10.0, 4.0]]), 2.0, (80, 100)),
        torch.tensor([[0.0, 0.0, 15.0, 6.0]], dtype=torch.float64),
    )


def test_pixel_crop_boxes_floor_ceil_and_min_size():
    boxes = torch.tensor(
        [[87.5, 67.5, 100.0, 80.0], [20.0, 20.0, 20.0, 30.0], [100.0, 80.0, 100.0, 80.0]],
        dtype=torch.float64,
    )
    out = pixel_crop_boxes(boxes, (80, 100))
    expected = torch.tensor([[87, 67, 100, 80], [20, 20, 21, 30], [99, 79, 100, 80]])
    assert out.dtype == torch.int64
    torch.testing.assert_close(out, expected)


def test_image_inputs_become_uint8_hwc_rgb():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    for image in (rgb, chw, chw / 255.0, Image.fromarray(rgb)):
        out = to_uint8_hwc(image)
        assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
        np.testing.assert_array_equal(out, rgb)
    with pytest.raises(ValueError, match="MyTeacher: numpy image must be HWC uint8"):
        to_uint8_hwc(rgb.astype(np.float32), owner="MyTeacher")
    with pytest.raises(ValueError, match=r"MyTeacher: float tensor image must be RGB in \[0, 1\]"):
        to_uint8_hwc(chw.float(), owner="MyTeacher")
    with pytest.raises(TypeError, match="RegionTeacher: image must be a PIL image"):
        to_uint8_hwc([[0, 0, 0]])


def test_check_boxes_names_the_bad_box():
    assert check_boxes(torch.zeros(0), (4, 4)).shape == (0, 4)
    boxes = check_boxes(np.array([[0, 0, 2, 2]]), (4, 4))
    assert boxes.dtype == torch.float64 and boxes.shape == (1, 4)
    with pytest.raises(ValueError, match=r"T: boxes must have shape \(N, 4\)"):
        check_boxes(torch.zeros(2, 5), (4, 4), owner="T")
    with pytest.raises(ValueError, match="T: box 1 .* not a valid XYXY box"):
        check_boxes(torch.tensor([[0.0, 0.0, 1.0, 1.0], [3.0, 0.0, 1.0, 1.0]]), (4, 4), owner="T")
    with pytest.raises(ValueError, match="box 0"):
        check_boxes(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), (4, 4))
