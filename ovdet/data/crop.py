"""Large-scale-jitter cropping that works on polygon masks without shapely.

ViLD trains with large-scale jitter (tensorflow/tpu ``utils/input_utils.py::
resize_and_crop_image``: resize to fit a random fraction in [0.1, 2.0] of 1024 x 1024, then a
random 1024 x 1024 crop, padded at the bottom and right). detectron2 has both halves
(``ResizeScale`` + ``FixedSizeCrop``), but cropping polygon masks (LVIS, COCO) goes through
fvcore's ``CropTransform.apply_polygons``, which needs the ``shapely`` package. ovdet does not
depend on shapely, so :class:`PolygonFixedSizeCrop` is ``FixedSizeCrop`` with a crop transform
(:class:`PolygonClipCropTransform`) that clips polygons to the crop window itself
(Sutherland-Hodgman against the four window edges). Everything else (image, boxes, bitmasks,
padding) is detectron2's.

A polygon that leaves the window through one edge and re-enters through the same edge stays
one polygon, joined by a zero-area segment along that edge (shapely would split it in two);
its rasterised mask is the same.
"""

from __future__ import annotations

import numpy as np
from detectron2.data import transforms as T
from fvcore.transforms.transform import CropTransform, TransformList

__all__ = ["PolygonClipCropTransform", "PolygonFixedSizeCrop", "clip_polygon"]


def _clip_edge(points: np.ndarray, axis: int, bound: float, keep_below: bool) -> np.ndarray:
    """One Sutherland-Hodgman step: keep the part of a closed polygon on one side of a line.

    Args:
        points: (N, 2) vertices (x, y) of a closed polygon (last joins first).
        axis: 0 for a vertical line x = bound, 1 for a horizontal line y = bound.
        bound: the line's coordinate.
        keep_below: keep coordinates <= bound (else >= bound).
    """
    if len(points) == 0:
        return points
    out: list[np.ndarray] = []
    coord = points[:, axis]
    inside = coord <= bound if keep_below else coord >= bound
    prev = len(points) - 1
    for cur in range(len(points)):
        if inside[cur]:
            if not inside[prev]:
                out.append(_crossing(points[prev], points[cur], axis, bound))
            out.append(points[cur])
        elif inside[prev]:
            out.append(_crossing(points[prev], points[cur], axis, bound))
        prev = cur
    return np.asarray(out, dtype=points.dtype).reshape(-1, 2)


def _crossing(a: np.ndarray, b: np.ndarray, axis: int, bound: float) -> np.ndarray:
    t = (bound - a[axis]) / (b[axis] - a[axis])
    point = a + t * (b - a)
    point[axis] = bound
    return point


def clip_polygon(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The part of a polygon inside the window [x0, x1] x [y0, y1] (Sutherland-Hodgman).

    Args:
        points: (N, 2) float vertices (x, y) of a closed polygon.

    Returns:
        (M, 2) vertices of the clipped polygon; M < 3 when nothing with an area is left.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    for axis, bound, keep_below in ((0, x0, False), (0, x1, True), (1, y0, False), (1, y1, True)):
        points = _clip_edge(points, axis, bound, keep_below)
    return points


class PolygonClipCropTransform(CropTransform):
    """fvcore's ``CropTransform`` whose ``apply_polygons`` needs no shapely (see the module
    docstring); polygons with less than 3 vertices or no area inside the window are dropped."""

    def apply_polygons(self, polygons: list) -> list:
        """Clip each (N, 2) polygon (absolute x, y) to the crop and shift it into the crop."""
        out = []
        for polygon in polygons:
            clipped = clip_polygon(polygon, self.x0, self.y0, self.x0 + self.w, self.y0 + self.h)
            if len(clipped) < 3:
                continue
            x, y = clipped[:, 0], clipped[:, 1]
            if abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) <= 1e-9:
                continue  # a line or a point: no area
            out.append(self.apply_coords(clipped.astype(np.float64)))
        return out


class PolygonFixedSizeCrop(T.FixedSizeCrop):
    """detectron2's ``FixedSizeCrop`` (random crop to ``crop_size``, pad at the bottom and right)
    with :class:`PolygonClipCropTransform` as its crop, so polygon masks crop without shapely.

    Args:
        crop_size: (height, width) of the output.
        pad: pad images smaller than ``crop_size`` up to it.
        pad_value: value of the padded pixels.
    """

    def get_transform(self, image: np.ndarray) -> TransformList:
        transforms = super().get_transform(image)
        crop = transforms.transforms[0]
        transforms.transforms[0] = PolygonClipCropTransform(
            crop.x0, crop.y0, crop.w, crop.h, crop.orig_w, crop.orig_h
        )
        return transforms
