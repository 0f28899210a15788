"""Drawing detections on images (PIL; no display needed)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw


def class_colour(index: int) -> tuple[int, int, int]:
    """A stable, well-spread colour for class ``index`` (golden-ratio hue steps)."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[int],
    names: Sequence[str],
    scores: Sequence[float],
    masks: np.ndarray | None = None,
    mask_alpha: float = 0.45,
) -> Image.Image:
    """Return an RGB PIL image with boxes (XYXY), "name score" captions and optional masks.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) XYXY pixels. labels: (N,) class indices (for colours).
        names: (N,) class names. scores: (N,). masks: (N, H, W) bool or None.
    """
    canvas = image.astype(np.float32).copy()
    if masks is not None:
        for mask, label in zip(masks, labels):
            colour = np.array(class_colour(int(label)), dtype=np.float32)
            canvas[mask] = canvas[mask] * (1.0 - mask_alpha) + colour * mask_alpha
    out = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    width = max(1, round(max(out.size) / 400))
    for box, label, name, score in zip(boxes, labels, names, scores):
        colour = class_colour(int(label))
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        text = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), text)
        ty = y0 - (bottom - top) - 2 if y0 - (bottom - top) - 2 >= 0 else y0
        draw.rectangle([x0, ty, x0 + (right - left) + 4, ty + (bottom - top) + 2], fill=colour)
        draw.text((x0 + 2, ty), text, fill=(0, 0, 0))
    return out
