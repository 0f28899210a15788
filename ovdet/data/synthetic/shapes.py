"""Rasterise OV-Shapes shapes into binary masks (PIL polygon / ellipse drawing, no anti-alias).

Masks are exact pixel sets: the generator paints an object's colour on exactly the pixels of
its mask, so an annotation's mask, box and area agree with the image to the pixel.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

_STAR_INNER = 0.45  # inner / outer radius of the 5-pointed star
_CROSS_HALF_WIDTH = 0.32  # arm half-width / radius of the plus-shaped cross
_RING_INNER = 0.55  # hole radius / outer radius of the ring


def _regular(n: int, start: float) -> np.ndarray:
    t = start + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star() -> np.ndarray:
    pts = _regular(10, -math.pi / 2)
    pts[1::2] *= _STAR_INNER
    return pts


def _cross() -> np.ndarray:
    w = _CROSS_HALF_WIDTH
    quarter = [(w, -1), (w, -w), (1, -w)]  # one arm corner; the others are its rotations
    pts = np.array(quarter, dtype=np.float64)
    rot = np.array([[0.0, 1.0], [-1.0, 0.0]])  # 90 degrees (x, y) -> (-y, x)
    return np.concatenate([pts @ np.linalg.matrix_power(rot, k) for k in range(4)])


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y + 2.5], axis=1)  # roughly centre the heart's extent on the origin
    return pts / np.abs(pts).max()


# Unit-radius outlines (x, y), image convention (y down), for the polygon shapes.
_OUTLINES = {
    "square": lambda: _regular(4, math.pi / 4),
    "triangle": lambda: _regular(3, -math.pi / 2),
    "star": _star,
    "hexagon": lambda: _regular(6, 0.0),
    "cross": _cross,
    "heart": _heart,
}
ROUND_SHAPES = ("circle", "ring")


def shape_mask(
    shape: str,
    image_size: tuple[int, int],
    centre: tuple[float, float],
    radius: float,
    angle: float = 0.0,
) -> np.ndarray:
    """Binary mask of one shape.

    Args:
        shape: one of ``attributes.SHAPES``.
        image_size: ``(height, width)`` of the mask.
        centre: ``(x, y)`` centre in pixels.
        radius: outer radius in pixels (the shape fits in a circle of this radius).
        angle: rotation in radians (ignored by round shapes).

    Returns:
        Bool array (height, width); parts outside the image are clipped.
    """
    h, w = image_size
    cx, cy = centre
    # Draw in a local window around the shape (cheap), then place it into the full mask.
    x0, y0 = int(math.floor(cx - radius)) - 1, int(math.floor(cy - radius)) - 1
    size = int(math.ceil(2 * radius)) + 3
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    lx, ly = cx - x0, cy - y0
    if shape in ROUND_SHAPES:
        draw.ellipse([lx - radius, ly - radius, lx + radius, ly + radius], fill=1)
        if shape == "ring":
            r = radius * _RING_INNER
            draw.ellipse([lx - r, ly - r, lx + r, ly + r], fill=0)
    elif shape in _OUTLINES:
        pts = _OUTLINES[shape]()
        c, s = math.cos(angle), math.sin(angle)
        rot = pts @ np.array([[c, s], [-s, c]])
        xy = rot * radius + (lx, ly)
        draw.polygon([tuple(p) for p in xy.tolist()], fill=1)
    else:
        raise ValueError(f"shape_mask: unknown shape {shape!r}")
    local = np.asarray(canvas, dtype=bool)
    mask = np.zeros((h, w), dtype=bool)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + size, h), min(x0 + size, w)
    if ye > ys and xe > xs:
        mask[ys:ye, xs:xe] = local[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return mask
