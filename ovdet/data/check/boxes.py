"""Checks of annotation boxes: each ``bbox``, boxes outside their image, and the file-level
heuristics (normalised or ``[x1, y1, x2, y2]`` boxes)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ovdet.data.check.fields import At, all_numbers, short
from ovdet.data.check.report import Collector

# A box edge beyond the image by more than this many pixels is "outside" (rounding in
# annotation tools puts edges up to a pixel out).
OUTSIDE_SLACK_PX = 1.0
# ... and by more than this fraction of the image side (plus the slack) "far outside".
FAR_OUTSIDE_FRACTION = 0.1


def check_box(ann: Mapping, where: At, c: Collector) -> tuple[float, float, float, float] | None:
    if "bbox" not in ann:
        c.add(
            "annotation.missing_bbox",
            "error",
            "annotations need a 'bbox' [x, y, width, height]",
            where,
        )
        return None
    box = ann["bbox"]
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        c.add(
            "bbox.shape",
            "error",
            "'bbox' must be a list of 4 numbers [x, y, width, height]",
            f"{where}: bbox={short(box)}",
        )
        return None
    if not all_numbers(box):
        strings = any(isinstance(v, str) for v in box)
        c.add(
            "bbox.type",
            "error",
            "'bbox' values must be json numbers"
            + (" (numbers written as strings: remove the quotes)" if strings else ""),
            f"{where}: bbox={short(box)}",
        )
        return None
    if not all(math.isfinite(v) for v in box):
        c.add(
            "bbox.not_finite",
            "error",
            "'bbox' has NaN or infinite values; fix or remove the annotation",
            f"{where}: bbox={short(list(box))}",
        )
        return None
    x, y, w, h = (float(v) for v in box)
    if w < 0 or h < 0:
        c.add(
            "bbox.negative_size",
            "error",
            "negative box width or height; COCO boxes are [x, y, width, height] with "
            "width, height > 0",
            f"{where}: bbox={short(list(box))}",
        )
        return None
    if w == 0 or h == 0:
        c.add(
            "bbox.zero_size",
            "warning",
            "zero-size boxes (width or height 0): detectron2's mapper drops them in training and "
            "no detection can match them in evaluation; remove them or give them their extent",
            f"{where}: bbox={short(list(box))}",
        )
        return None
    return x, y, w, h


def outside_severity(x: float, y: float, w: float, h: float, W: float, H: float) -> str | None:
    beyond_x = max(-x, x + w - W)
    beyond_y = max(-y, y + h - H)
    if beyond_x <= OUTSIDE_SLACK_PX and beyond_y <= OUTSIDE_SLACK_PX:
        return None
    entirely = x >= W or y >= H or x + w <= 0 or y + h <= 0
    far = (
        beyond_x > FAR_OUTSIDE_FRACTION * W + OUTSIDE_SLACK_PX
        or beyond_y > FAR_OUTSIDE_FRACTION * H + OUTSIDE_SLACK_PX
    )
    return "error" if entirely or far else "warning"


def box_heuristics(
    geometry: list[tuple[float, float, float, float, float, float]],
    outside: list[tuple[str, str]],
    c: Collector,
) -> None:
    """File-level: normalised boxes, [x1, y1, x2, y2] boxes, then boxes outside images."""
    if len(geometry) >= 2:
        g = np.asarray(geometry, dtype=np.float64)
        x, y, w, h, W, H = g.T
        if np.all(g[:, :4] <= 1.0 + 1e-6) and np.median(np.minimum(W, H)) > 32:
            c.add(
                "bbox.normalized",
                "error",
                "every box lies within [0, 1]: boxes look normalised (YOLO style); COCO boxes "
                "are in pixels: multiply x, width by the image width and y, height by its height",
                f"{len(geometry)} boxes, e.g. bbox={short(list(g[0, :4]))}",
            )
            c.set_count("bbox.normalized", len(geometry))
            return
        over = (x + w > W + OUTSIDE_SLACK_PX) | (y + h > H + OUTSIDE_SLACK_PX)
        as_xyxy_ok = (w > x) & (h > y) & (w <= W + OUTSIDE_SLACK_PX) & (h <= H + OUTSIDE_SLACK_PX)
        if over.any() and as_xyxy_ok.all():
            k = int(np.argmax(over))
            c.add(
                "bbox.looks_xyxy",
                "error",
                f"boxes look like [x1, y1, x2, y2]: {int(over.sum())} of {len(geometry)} end "
                "outside their image as [x, y, width, height] while all fit as corners; write "
                "[x1, y1, x2 - x1, y2 - y1]",
                f"bbox={short(list(g[k, :4]))} in a {W[k]:g}x{H[k]:g} image",
            )
            c.set_count("bbox.looks_xyxy", len(geometry))
            return
    for severity, example in outside:
        if severity == "error":
            c.add(
                "bbox.outside_image",
                "error",
                "boxes far outside their image (beyond it by more than 10% of its size); check "
                "the box format ([x, y, width, height] in pixels) and the image's size",
                example,
            )
        else:
            c.add(
                "bbox.outside_slightly",
                "warning",
                "boxes extending past the image border (clipped when training)",
                example,
            )
