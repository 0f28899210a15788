"""Rotated-box IoU and NMS in PyTorch, for a detectron2 without compiled ops.

Boxes follow detectron2's :class:`~detectron2.structures.RotatedBoxes` convention:
``(x_center, y_center, width, height, angle)`` with the angle in degrees, counter-clockwise
as seen on an image whose y axis points down. Rotating by ``theta`` maps a box-local offset
``(dx, dy)`` to ``(cos(theta) dx + sin(theta) dy, -sin(theta) dx + cos(theta) dy)``, so the
width vector ``(w/2, 0)`` becomes ``(w/2 cos, -w/2 sin)`` and the height vector ``(0, h/2)``
becomes ``(h/2 sin, h/2 cos)``.

The intersection of two rectangles is a convex polygon whose vertices are among the corners
of each rectangle that lie inside the other and the crossings of their edges (at most
4 + 4 + 16 candidates). The candidates of all box pairs are computed at once, ordered by
angle around their centroid, and the polygon area is the shoelace sum; points that are not
vertices are replaced by a copy of the first vertex, which adds zero area. Pairs whose
axis-aligned hulls do not meet are skipped (their IoU is 0), which keeps NMS over many
scattered boxes cheap.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["box_iou_rotated", "nms_rotated", "register_nms_rotated_op"]

# Pairs handled per vectorised step: bounds memory to ~ 24 points x 2 coords x float64 each.
_PAIRS_PER_CHUNK = 1 << 16
# Relative tolerance for "on the boundary counts as inside" and parallel-edge tests.
_EPS = 1e-9


def _corners(boxes: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Corners (P, 4, 2) of boxes (P, 5) placed at ``centers`` (P, 2), in boundary order."""
    theta = boxes[:, 4] * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    half_w, half_h = boxes[:, 2] * 0.5, boxes[:, 3] * 0.5
    u = torch.stack([cos * half_w, -sin * half_w], dim=-1)  # width half-vector
    v = torch.stack([sin * half_h, cos * half_h], dim=-1)  # height half-vector
    c = centers
    return torch.stack([c + u + v, c - u + v, c - u - v, c + u - v], dim=1)


def _inside(points: torch.Tensor, boxes: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Whether points (P, K, 2) lie in boxes (P, 5) centred at (P, 2), boundary included."""
    theta = boxes[:, 4] * (math.pi / 180.0)
    cos, sin = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
    d = points - centers[:, None, :]
    along_w = d[..., 0] * cos - d[..., 1] * sin
    along_h = d[..., 0] * sin + d[..., 1] * cos
    tol = _EPS * (boxes[:, 2] + boxes[:, 3])[:, None]
    return (along_w.abs() <= boxes[:, 2, None] * 0.5 + tol) & (
        along_h.abs() <= boxes[:, 3, None] * 0.5 + tol
    )


def _edge_crossings(ca: torch.Tensor, cb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crossings of the 4 edges of polygon ``ca`` with the 4 of ``cb`` (both (P, 4, 2)).

    Returns:
        points (P, 16, 2) and validity (P, 16).
    """
    p = ca[:, :, None, :]  # edge starts of a, (P, 4, 1, 2)
    r = (torch.roll(ca, -1, dims=1) - ca)[:, :, None, :]  # edge vectors of a
    q = cb[:, None, :, :]
    s = (torch.roll(cb, -1, dims=1) - cb)[:, None, :, :]

    def cross(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x[..., 0] * y[..., 1] - x[..., 1] * y[..., 0]

    denom = cross(r, s)  # (P, 4, 4)
    qp = q - p
    scale = (r.norm(dim=-1) * s.norm(dim=-1)).clamp_min(torch.finfo(ca.dtype).tiny)
    parallel = denom.abs() <= _EPS * scale
    safe = torch.where(parallel, torch.ones_like(denom), denom)
    t = cross(qp, s) / safe
    u = cross(qp, r) / safe
    valid = ~parallel & (t >= -_EPS) & (t <= 1 + _EPS) & (u >= -_EPS) & (u <= 1 + _EPS)
    points = p + t[..., None] * r
    return points.flatten(1, 2), valid.flatten(1, 2)


def _intersection_area(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Area (P,) of the intersection of rotated boxes a (P, 5) and b (P, 5), float64."""
    # Work in a frame centred on box a: keeps precision for boxes far from the origin.
    ca = _corners(a, torch.zeros_like(a[:, :2]))
    center_b = b[:, :2] - a[:, :2]
    cb = _corners(b, center_b)
    cross_pts, cross_ok = _edge_crossings(ca, cb)
    points = torch.cat([ca, cb, cross_pts], dim=1)  # (P, 24, 2)
    valid = torch.cat(
        [_inside(ca, b, center_b), _inside(cb, a, torch.zeros_like(center_b)), cross_ok], dim=1
    )
    count = valid.sum(dim=1)
    weights = valid.to(points.dtype)
    centroid = (points * weights[..., None]).sum(dim=1) / count.clamp_min(1)[:, None]
    rel = points - centroid[:, None, :]
    angle = torch.atan2(rel[..., 1], rel[..., 0])
    angle = torch.where(valid, angle, torch.full_like(angle, 4.0))  # invalid last (> pi)
    order = angle.argsort(dim=1)
    rel = rel.gather(1, order[..., None].expand_as(rel))
    valid = valid.gather(1, order)
    rel = torch.where(valid[..., None], rel, rel[:, :1, :])  # non-vertices -> first vertex
    nxt = torch.roll(rel, -1, dims=1)
    area = 0.5 * (rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0]).sum(dim=1).abs()
    return torch.where(count >= 3, area, torch.zeros_like(area))


def _half_extents(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half width and half height (each (P,)) of the axis-aligned hulls of boxes (P, 5)."""
    theta = boxes[:, 4] * (math.pi / 180.0)
    cos, sin = torch.cos(theta).abs(), torch.sin(theta).abs()
    half_w, half_h = boxes[:, 2] * 0.5, boxes[:, 3] * 0.5
    tol = _EPS * (half_w + half_h)
    return cos * half_w + sin * half_h + tol, sin * half_w + cos * half_h + tol


def box_iou_rotated(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of rotated boxes (stand-in for ``detectron2._C.box_iou_rotated``).

    Args:
        boxes1: (N, 5) ``(x_center, y_center, width, height, angle_degrees)``.
        boxes2: (M, 5) same format.

    Returns:
        (N, M) IoU, dtype of ``boxes1``; 0 where either box has (near) zero area.
    """
    if boxes1.dim() != 2 or boxes1.shape[-1] != 5 or boxes2.dim() != 2 or boxes2.shape[-1] != 5:
        raise ValueError(
            "box_iou_rotated expects boxes of shape (N, 5) and (M, 5), got "
            f"{tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    n, m = boxes1.shape[0], boxes2.shape[0]
    iou = boxes1.new_zeros((n, m))
    if n == 0 or m == 0:
        return iou
    b1, b2 = boxes1.to(torch.float64), boxes2.to(torch.float64)
    area1, area2 = b1[:, 2] * b1[:, 3], b2[:, 2] * b2[:, 3]
    # Pairs whose axis-aligned hulls are disjoint have IoU 0: skip them.
    (x1, y1), (x2, y2) = _half_extents(b1), _half_extents(b2)
    candidates = (
        ((b1[:, None, 0] - b2[None, :, 0]).abs() <= x1[:, None] + x2[None, :])
        & ((b1[:, None, 1] - b2[None, :, 1]).abs() <= y1[:, None] + y2[None, :])
        & (area1[:, None] > 1e-14)
        & (area2[None, :] > 1e-14)
    )
    rows, cols = candidates.nonzero(as_tuple=True)
    for start in range(0, rows.numel(), _PAIRS_PER_CHUNK):
        i = rows[start : start + _PAIRS_PER_CHUNK]
        j = cols[start : start + _PAIRS_PER_CHUNK]
        inter = _intersection_area(b1[i], b2[j])
        union = area1[i] + area2[j] - inter
        iou[i, j] = (inter / union.clamp_min(1e-14)).clamp(0.0, 1.0).to(iou.dtype)
    return iou


def nms_rotated(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS of rotated boxes (stand-in for ``detectron2._C.nms_rotated``).

    Like the compiled op, a box is suppressed when its IoU with a kept, higher-scoring box is
    ``>= iou_threshold``; ties in score keep the input order.

    Args:
        boxes: (N, 5) ``(x_center, y_center, width, height, angle_degrees)``.
        scores: (N,).
        iou_threshold: suppression threshold.

    Returns:
        int64 (K,) indices of the kept boxes, in decreasing order of score.
    """
    if boxes.dim() != 2 or boxes.shape[-1] != 5 or scores.shape != boxes.shape[:1]:
        raise ValueError(
            "nms_rotated expects boxes (N, 5) and scores (N,), got "
            f"{tuple(boxes.shape)} and {tuple(scores.shape)}"
        )
    if boxes.shape[0] == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    sorted_boxes = boxes[order]
    overlaps = (box_iou_rotated(sorted_boxes, sorted_boxes) >= iou_threshold).cpu().numpy()
    suppressed = np.zeros(overlaps.shape[0], dtype=bool)
    kept = []
    for i in range(overlaps.shape[0]):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= overlaps[i]  # marks only boxes not yet decided or already suppressed
    return order[torch.as_tensor(kept, dtype=torch.int64, device=order.device)]


def _nms_rotated_kernel(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float):
    return nms_rotated(boxes, scores, iou_threshold)


def register_nms_rotated_op() -> bool:
    """Define ``torch.ops.detectron2.nms_rotated`` (detectron2 v0.6 calls it through torch.ops).

    Only for a detectron2 without compiled ops: the compiled extension registers the op
    itself when it loads. The registration lives for the whole process.

    Returns:
        True when the op was registered now, False when it already existed.
    """
    if hasattr(torch.ops.detectron2, "nms_rotated"):
        return False
    torch.library.define(
        "detectron2::nms_rotated", "(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor"
    )
    torch.library.impl("detectron2::nms_rotated", "CompositeExplicitAutograd", _nms_rotated_kernel)
    return True
