"""Rotated-box IoU and NMS of the detectron2 stand-in (and detectron2's wrappers over it)."""

from __future__ import annotations

import math

import pytest
import torch
from detectron2.layers import batched_nms_rotated, nms_rotated
from detectron2.layers.rotated_boxes import pairwise_iou_rotated
from detectron2.structures import RotatedBoxes
from detectron2.structures.rotated_boxes import pairwise_iou
from torchvision.ops import box_iou

from ovdet.compat import rotated_boxes

# Both the stand-in itself and detectron2's public function (compiled op or stand-in).
IOU_FUNCTIONS = [rotated_boxes.box_iou_rotated, pairwise_iou_rotated]


def _reference_corners(box: list[float]) -> list[tuple[float, float]]:
    """Corners from the rotation formula of detectron2's RotatedBoxes docstring."""
    xc, yc, w, h, angle = box
    t = math.radians(angle)
    corners = []
    for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        xr = math.sin(t) * y + math.cos(t) * x + xc
        yr = math.cos(t) * y - math.sin(t) * x + yc
        corners.append((xr, yr))
    return corners


def _signed_area(poly: list[tuple[float, float]]) -> float:
    n = len(poly)
    pairs = ((poly[i], poly[(i + 1) % n]) for i in range(n))
    return sum(p[0] * q[1] - q[0] * p[1] for p, q in pairs) / 2


def _reference_iou(a: list[float], b: list[float]) -> float:
    """Scalar Sutherland-Hodgman clipping of a's rectangle by b's (independent of the op)."""
    subject, clip = _reference_corners(a), _reference_corners(b)
    if _signed_area(clip) < 0:
        clip = clip[::-1]  # counter-clockwise clip polygon (in x-right, y-up sense)
    for k in range(4):
        p, q = clip[k], clip[(k + 1) % 4]

        def inside(pt, p=p, q=q):
            return (q[0] - p[0]) * (pt[1] - p[1]) - (q[1] - p[1]) * (pt[0] - p[0]) >= 0

        def crossing(s, e, p=p, q=q):
            dx, dy = e[0] - s[0], e[1] - s[1]
            ex, ey = q[0] - p[0], q[1] - p[1]
            t = ((p[0] - s[0]) * ey - (p[1] - s[1]) * ex) / (dx * ey - dy * ex)
            return (s[0] + t * dx, s[1] + t * dy)

        output = []
        for i, cur in enumerate(subject):
            prev = subject[i - 1]
            if inside(cur):
                if not inside(prev):
                    output.append(crossing(prev, cur))
                output.append(cur)
            elif inside(prev):
                output.append(crossing(prev, cur))
        subject = output
        if not subject:
            return 0.0
    inter = abs(_signed_area(subject))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _random_axis_aligned(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(n, 2, generator=g) * 40
    sizes = torch.rand(n, 2, generator=g) * 20 + 1
    xyxy = torch.cat([centers - sizes / 2, centers + sizes / 2], dim=1)
    return centers, sizes, xyxy


@pytest.mark.parametrize("iou_fn", IOU_FUNCTIONS)
def test_angle_zero_matches_axis_aligned_iou(iou_fn):
    centers, sizes, xyxy = _random_axis_aligned(40, seed=1)
    rotated = torch.cat([centers, sizes, torch.zeros(40, 1)], dim=1)
    iou = iou_fn(rotated, rotated[:25])
    assert iou.shape == (40, 25)
    assert (iou > 0).float().mean() > 0.2  # the case exercises overlaps, not only zeros
    torch.testing.assert_close(iou, box_iou(xyxy, xyxy[:25]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("iou_fn", IOU_FUNCTIONS)
def test_quarter_turn_swaps_width_and_height(iou_fn):
    centers, sizes, xyxy = _random_axis_aligned(30, seed=2)
    turned = torch.cat([centers, sizes.flip(1), torch.full((30, 1), 90.0)], dim=1)
    turned_back = torch.cat([centers, sizes.flip(1), torch.full((30, 1), -90.0)], dim=1)
    expected = box_iou(xyxy, xyxy)
    torch.testing.assert_close(iou_fn(turned, turned_back), expected, atol=1e-5, rtol=0)
    straight = torch.cat([centers, sizes, torch.zeros(30, 1)], dim=1)
    torch.testing.assert_close(iou_fn(turned, straight), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("iou_fn", IOU_FUNCTIONS)
def test_squares_rotated_45_degrees(iou_fn):
    # A 2x2 square and the same square turned 45 degrees: the intersection is a regular
    # octagon = square minus 4 corner triangles with legs 2 - sqrt(2).
    inter = 4 - 4 * (2 - math.sqrt(2)) ** 2 / 2
    expected = inter / (8 - inter)
    boxes = torch.tensor([[5.0, 5.0, 2.0, 2.0, 0.0], [5.0, 5.0, 2.0, 2.0, 45.0]])
    iou = iou_fn(boxes, boxes)
    assert iou[0, 1].item() == pytest.approx(expected, abs=1e-6)
    assert iou[1, 0].item() == pytest.approx(expected, abs=1e-6)
    torch.testing.assert_close(iou.diagonal(), torch.ones(2))


@pytest.mark.parametrize("iou_fn", IOU_FUNCTIONS)
def test_angle_sign_follows_detectron2_convention(iou_fn):
    # Positive angles turn counter-clockwise on an image with y pointing down: the width axis
    # of a 45-degree box points to (+x, -y). A copy shifted along that axis overlaps over
    # 10 - 3*sqrt(2) of its length; one shifted along (+x, +y) does not overlap at all.
    box = torch.tensor([[0.0, 0.0, 10.0, 2.0, 45.0]])
    along = torch.tensor([[3.0, -3.0, 10.0, 2.0, 45.0]])
    across = torch.tensor([[3.0, 3.0, 10.0, 2.0, 45.0]])
    inter = 2 * (10 - 3 * math.sqrt(2))
    assert iou_fn(box, along).item() == pytest.approx(inter / (40 - inter), abs=1e-6)
    assert iou_fn(box, across).item() == 0.0


def test_random_boxes_match_reference_clipping():
    g = torch.Generator().manual_seed(3)
    n = 24
    boxes = torch.cat(
        [
            torch.rand(n, 2, generator=g) * 12,
            torch.rand(n, 2, generator=g) * 8 + 0.5,
            torch.rand(n, 1, generator=g) * 360 - 180,
        ],
        dim=1,
    ).double()
    iou = rotated_boxes.box_iou_rotated(boxes, boxes)
    expected = torch.tensor(
        [[_reference_iou(a, b) for b in boxes.tolist()] for a in boxes.tolist()],
        dtype=torch.float64,
    )
    assert (expected > 0.05).sum() > n  # plenty of genuinely rotated overlaps
    torch.testing.assert_close(iou, expected, atol=1e-9, rtol=0)


def test_far_from_origin_empty_and_degenerate_boxes():
    far = torch.tensor([[1e5, 1e5, 4.0, 2.0, 30.0], [1e5 + 1, 1e5, 4.0, 2.0, 30.0]])
    near = far - torch.tensor([1e5, 1e5, 0.0, 0.0, 0.0])
    torch.testing.assert_close(
        rotated_boxes.box_iou_rotated(far, far),
        rotated_boxes.box_iou_rotated(near, near),
        atol=1e-4,
        rtol=0,
    )
    assert rotated_boxes.box_iou_rotated(far, far[:0]).shape == (2, 0)
    flat = torch.tensor([[0.0, 0.0, 0.0, 3.0, 10.0]])
    assert rotated_boxes.box_iou_rotated(flat, flat).item() == 0.0
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        rotated_boxes.box_iou_rotated(torch.zeros(2, 4), torch.zeros(2, 5))


def test_rotated_boxes_structure_pairwise_iou():
    boxes = RotatedBoxes(torch.tensor([[5.0, 5.0, 2.0, 2.0, 0.0], [5.0, 5.0, 2.0, 2.0, 90.0]]))
    torch.testing.assert_close(pairwise_iou(boxes, boxes), torch.ones(2, 2))


# Hand-made case: 0 and 1 overlap with IoU 90/110; 2 is box 0 turned 45 degrees (IoU 0.7071
# with it); 3 and 4 are the same square (quarter turn apart), 4 scoring higher.
NMS_BOXES = torch.tensor(
    [
        [0.0, 0.0, 10.0, 10.0, 0.0],
        [1.0, 0.0, 10.0, 10.0, 0.0],
        [0.0, 0.0, 10.0, 10.0, 45.0],
        [50.0, 50.0, 4.0, 4.0, 10.0],
        [50.0, 50.0, 4.0, 4.0, 100.0],
    ]
)
NMS_SCORES = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95])


@pytest.mark.parametrize("nms_fn", [rotated_boxes.nms_rotated, nms_rotated])
def test_nms_rotated_hand_made(nms_fn):
    assert nms_fn(NMS_BOXES, NMS_SCORES, 0.5).tolist() == [4, 0]
    assert nms_fn(NMS_BOXES, NMS_SCORES, 0.75).tolist() == [4, 0, 2]
    assert nms_fn(NMS_BOXES, NMS_SCORES, 0.85).tolist() == [4, 0, 1, 2]
    keep = nms_fn(NMS_BOXES[:0], NMS_SCORES[:0], 0.5)
    assert keep.dtype == torch.int64 and keep.numel() == 0


@pytest.mark.parametrize("nms_fn", [rotated_boxes.nms_rotated, nms_rotated])
def test_nms_rotated_suppresses_at_equal_iou(nms_fn):
    # IoU exactly 0.5 (intersection 2, union 4): suppressed at threshold 0.5, as compiled.
    boxes = torch.tensor([[0.0, 0.0, 3.0, 1.0, 0.0], [1.0, 0.0, 3.0, 1.0, 0.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms_fn(boxes, scores, 0.5).tolist() == [0]
    assert nms_fn(boxes, scores, 0.51).tolist() == [0, 1]


def test_batched_nms_rotated_keeps_classes_apart():
    keep = batched_nms_rotated(NMS_BOXES, NMS_SCORES, torch.tensor([0, 0, 1, 0, 0]), 0.5)
    assert keep.tolist() == [4, 0, 2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    iou_cpu = rotated_boxes.box_iou_rotated(NMS_BOXES, NMS_BOXES)
    iou_cuda = rotated_boxes.box_iou_rotated(NMS_BOXES.cuda(), NMS_BOXES.cuda())
    torch.testing.assert_close(iou_cuda.cpu(), iou_cpu)
    keep = nms_rotated(NMS_BOXES.cuda(), NMS_SCORES.cuda(), 0.5)
    assert keep.device.type == "cuda" and keep.tolist() == [4, 0]
