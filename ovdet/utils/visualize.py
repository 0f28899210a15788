"""Drawing detections on images: readable at any input size, PIL only, deterministic.

* An image whose long side is under ``min_size`` (512 px) is enlarged by the smallest integer
  factor that reaches it, nearest neighbour: each source pixel becomes a square block, so
  boxes and masks (scaled by the same factor) stay aligned with what they mark.
* Text has a fixed pixel size (PIL's built-in font; nothing is downloaded), whatever the size
  of the source image.
* Each "name score" label goes to the first free place among candidates around its box
  (:func:`layout_labels`): labels never cover each other and stay inside the canvas; one is
  shortened, then left out, only when no place is free. A thin leader line joins a label
  placed away from its box.
* Novel classes (``novel=``) are drawn with a dashed outline and a ``*`` before the name.
* The same input gives the same pixels, hence the same PNG bytes.

Example::

    pred = draw_detections(rgb, out["boxes"], out["labels"], out["class_names"], out["scores"])
    gt = draw_detections(rgb, gt_boxes, gt_labels, gt_names, novel=gt_is_novel)
    compose_panels([gt, pred], ["ground truth", "prediction"]).save("vis.png")
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "FONT_SIZE",
    "MIN_SIZE",
    "PANEL_GAP",
    "PlacedLabel",
    "class_colour",
    "compose_panels",
    "draw_detections",
    "label_text",
    "layout_labels",
    "load_font",
    "title_bar_height",
    "upscale_factor",
]

MIN_SIZE = 512
"""Default smallest long side of a drawn image, in pixels (smaller images are enlarged)."""
FONT_SIZE = 14
"""Default label text size in pixels (canvases over 1008 px get proportionally larger text)."""
PANEL_GAP = 8
"""Pixels between the panels of :func:`compose_panels`."""

_LABEL_PAD_X, _LABEL_PAD_Y = 3, 2
_LABEL_SPACING = 2  # least gap between two labels, pixels
_TITLE_PAD = 6
_TITLE_BG = (32, 32, 32)
_TITLE_FG = (255, 255, 255)
_PANEL_BG = (255, 255, 255)
_FAR_STEPS = 6  # far candidates reach this many label heights (and half widths) from the box

Rect = tuple[int, int, int, int]
"""Pixel rectangle ``(x0, y0, x1, y1)``; ``x1`` and ``y1`` exclusive."""


def class_colour(index: int) -> tuple[int, int, int]:
    """A stable, well-spread colour for class ``index`` (golden-ratio hue steps)."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=16)
def load_font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's built-in font at ``size`` pixels.

    Pillow >= 10.1 with FreeType scales its embedded font to any size; elsewhere this falls
    back to PIL's fixed bitmap font (about 11 px), so drawing still works, only smaller.
    """
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or built without FreeType
        return ImageFont.load_default()


def _font_size(canvas_size: tuple[int, int]) -> int:
    # constant for every enlarged image (their long side is < 2 * MIN_SIZE), larger only on
    # big photos where 14 px would be lost
    return max(FONT_SIZE, max(canvas_size) // 72)


def upscale_factor(height: int, width: int, min_size: int = MIN_SIZE) -> int:
    """The smallest integer ``k`` with ``k * max(height, width) >= min_size`` (at least 1).

    Raises:
        ValueError: for an empty image.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image of size {height}x{width}: nothing to draw")
    return max(1, math.ceil(min_size / max(height, width)))


def label_text(name: str, score: float | None = None, novel: bool = False) -> str:
    """The caption of one detection: ``"*name 0.57"`` (``*`` for novel, score when given)."""
    text = f"*{name}" if novel and not name.startswith("*") else name
    return text if score is None else f"{text} {score:.2f}"


def _line_metrics(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[int, int]:
    """(top offset, height) of a line of text drawn at y = 0, ascenders to descenders."""
    _, top, _, bottom = font.getbbox("Ag|")
    return top, bottom - top


def _label_size(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[int, int]:
    left, _, right, _ = font.getbbox(text)
    return right - left + 2 * _LABEL_PAD_X, _line_metrics(font)[1] + 2 * _LABEL_PAD_Y


def _shorter(text: str) -> list[str]:
    """Shorter forms of a caption, longest first: the name cut in half, then the score alone."""
    head, _, tail = text.rpartition(" ")
    try:
        float(tail)
    except ValueError:
        head, tail = text, ""
    forms = []
    if len(head) > 4:
        cut = head[: max(3, len(head) // 2)].rstrip() + ".."
        forms.append(f"{cut} {tail}".strip())
    if tail and head.startswith("*"):
        forms.append(f"*{tail}")
    elif tail:
        forms.append(tail)
    return forms


@dataclass(frozen=True)
class PlacedLabel:
    """Where :func:`layout_labels` put the caption of one box.

    Attributes:
        text: the caption as drawn (maybe shortened).
        rect: its rectangle ``(x0, y0, x1, y1)`` in canvas pixels, exclusive ends.
        leader: ``(xa, ya, xb, yb)``, a line from the label to its box when they do not
            touch, else None.
    """

    text: str
    rect: Rect
    leader: tuple[int, int, int, int] | None


def _candidates(box: Rect, w: int, h: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Top-left corners for a ``w`` x ``h`` label of ``box``: (touching it, farther away)."""
    x0, y0, x1, y1 = box
    near = [
        (x0, y0 - h),  # above, left-aligned
        (x0, y1),  # below
        (x0, y0),  # inside, top
        (x1 - w, y0 - h),  # above, right-aligned
        (x1 - w, y1),  # below, right-aligned
        (x0, y1 - h),  # inside, bottom
        (x1, y0),  # right of the box
        (x0 - w, y0),  # left of the box
    ]
    step_y, step_x = h + _LABEL_SPACING, max(1, w // 2)
    far = []
    for k in range(1, _FAR_STEPS + 1):  # rings of growing distance, nearest first
        for i in range(-k, k + 1):
            far += [
                (x0 + i * step_x, y0 - h - k * step_y),  # above
                (x0 + i * step_x, y1 + k * step_y),  # below
            ]
        for j in range(-k + 1, k):
            far += [(x1 + k * step_x, y0 + j * step_y), (x0 - w - k * step_x, y0 + j * step_y)]
    return near, far


def _overlap_area(rects: np.ndarray, others: np.ndarray, margin: int = 0) -> np.ndarray:
    """(C,) total area of each of ``rects`` (C, 4) inside ``others`` (M, 4), grown by margin."""
    if len(others) == 0:
        return np.zeros(len(rects), dtype=np.int64)
    a, b = rects[:, None, :], others[None, :, :]
    w = np.minimum(a[..., 2], b[..., 2] + margin) - np.maximum(a[..., 0], b[..., 0] - margin)
    h = np.minimum(a[..., 3], b[..., 3] + margin) - np.maximum(a[..., 1], b[..., 1] - margin)
    return (np.clip(w, 0, None) * np.clip(h, 0, None)).sum(axis=1)


def _leader(label: Rect, box: Rect) -> tuple[int, int, int, int] | None:
    """The shortest segment from ``label`` to ``box`` when it is longer than 2 px, else None."""

    def closest(a0: int, a1: int, b0: int, b1: int) -> tuple[int, int]:
        lo, hi = max(a0, b0), min(a1, b1) - 1
        if lo <= hi:  # the ranges overlap: a straight line at the middle of the overlap
            mid = (lo + hi) // 2
            return mid, mid
        return (a1 - 1, b0) if a1 <= b0 else (a0, b1 - 1)

    xa, xb = closest(label[0], label[2], box[0], box[2])
    ya, yb = closest(label[1], label[3], box[1], box[3])
    return (xa, ya, xb, yb) if math.hypot(xa - xb, ya - yb) > 2 else None


def layout_labels(
    boxes: np.ndarray | Sequence[Sequence[float]],
    texts: Sequence[str],
    canvas_size: tuple[int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont | None = None,
    order: Sequence[int] | None = None,
) -> list[PlacedLabel | None]:
    """Place one caption per box so that no two captions overlap.

    Labels are placed one by one in ``order`` (the first get the best places). Each goes to
    the first candidate position (above its box, below, inside at the top, the same
    right-aligned, inside at the bottom, right, left; then farther away, nearest first),
    shifted inside the canvas, that keeps a 2 px gap to the labels already placed. Among
    those, a place that covers no box is preferred (a near one, then a far one); else the
    near, then far, place covering the least box area. A caption with no free place is
    shortened (:func:`_shorter`) and tried again, and left out only when no form fits.

    Args:
        boxes: (N, 4) XYXY in canvas pixels.
        texts: (N,) captions.
        canvas_size: ``(width, height)`` of the canvas.
        font: the font the captions are drawn in (default: :func:`load_font` at the size
            :func:`draw_detections` uses for this canvas).
        order: placement order, a permutation of ``range(N)`` (default: as given).

    Returns:
        (N,) a :class:`PlacedLabel` per box, in the order of ``boxes``, or None where the
        caption was left out.

    Raises:
        ValueError: ``texts`` or ``order`` do not match ``boxes``.
    """
    box_arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(box_arr)
    if len(texts) != n:
        raise ValueError(f"layout_labels: {len(texts)} texts for {n} boxes")
    order = list(range(n)) if order is None else [int(i) for i in order]
    if sorted(order) != list(range(n)):
        raise ValueError(f"layout_labels: order must be a permutation of range({n}), got {order}")
    width, height = canvas_size
    font = font if font is not None else load_font(_font_size(canvas_size))
    int_boxes = np.round(box_arr).astype(np.int64)
    placed: list[PlacedLabel | None] = [None] * n
    taken = np.zeros((0, 4), dtype=np.int64)
    for idx in order:
        box: Rect = tuple(int(v) for v in int_boxes[idx])  # type: ignore[assignment]
        for text in [texts[idx], *_shorter(texts[idx])]:
            w, h = _label_size(text, font)
            if w > width or h > height:
                continue
            near, far = _candidates(box, w, h)
            corners = np.array(near + far, dtype=np.int64)
            corners[:, 0] = corners[:, 0].clip(0, width - w)  # shifted inside the canvas
            corners[:, 1] = corners[:, 1].clip(0, height - h)
            rects = np.concatenate([corners, corners + [w, h]], axis=1)
            free = _overlap_area(rects, taken, margin=_LABEL_SPACING) == 0
            if not free.any():
                continue
            covered = _overlap_area(rects, int_boxes)
            is_far = np.arange(len(rects)) >= len(near)
            # rank: clean near, clean far, then the least covered (near before far), then order
            rank = np.lexsort((np.arange(len(rects)), is_far, covered, is_far, covered > 0))
            best = next(int(r) for r in rank if free[r])
            rect: Rect = tuple(int(v) for v in rects[best])  # type: ignore[assignment]
            placed[idx] = PlacedLabel(text=text, rect=rect, leader=_leader(rect, box))
            taken = np.concatenate([taken, rects[best : best + 1]])
            break
    return placed


def _dashed_rectangle(
    draw: ImageDraw.ImageDraw, rect: Rect, colour: tuple[int, int, int], width: int
) -> None:
    """An outline of ``width`` px drawn inside ``rect`` (inclusive ends) in dashes."""
    x0, y0, x1, y1 = rect
    dash, gap = 3 * width + 3, 2 * width + 2
    for start, stop, fixed, horizontal in (
        (x0, x1, y0, True),
        (x0, x1, y1 - width + 1, True),
        (y0, y1, x0, False),
        (y0, y1, x1 - width + 1, False),
    ):
        for a in range(start, stop + 1, dash + gap):
            b = min(a + dash - 1, stop)
            if horizontal:
                draw.rectangle([a, fixed, b, fixed + width - 1], fill=colour)
            else:
                draw.rectangle([fixed, a, fixed + width - 1, b], fill=colour)


def _mask_edge(mask: np.ndarray, thickness: int) -> np.ndarray:
    """(H, W) bool: the pixels of ``mask`` within ``thickness`` px of its outside."""
    inner = mask.copy()
    for _ in range(thickness):
        padded = np.pad(inner, 1)
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    return (0, 0, 0) if luma >= 128 else (255, 255, 255)


def _check_length(name: str, values: Sequence | np.ndarray | None, n: int) -> None:
    if values is not None and len(values) != n:
        raise ValueError(f"draw_detections: {name} has {len(values)} entries for {n} boxes")


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[int],
    names: Sequence[str],
    scores: Sequence[float] | None = None,
    masks: np.ndarray | None = None,
    *,
    novel: Sequence[bool] | None = None,
    mask_alpha: float = 0.45,
    mask_outline: bool = True,
    min_size: int = MIN_SIZE,
    font_size: int | None = None,
) -> Image.Image:
    """Return an RGB PIL image with boxes, "name score" captions and optional masks.

    The image is enlarged by ``upscale_factor(H, W, min_size)`` (nearest neighbour), and the
    boxes and masks with it. Captions are placed by :func:`layout_labels`, highest score
    first; boxes of higher scores are drawn over lower ones.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) XYXY in ``image`` pixels.
        labels: (N,) class indices (they choose the colours).
        names: (N,) class names.
        scores: (N,) scores, shown after the names; None for ground truth (no scores).
        masks: (N, H, W) bool, or None.
        novel: (N,) True for a novel class: dashed outline and ``*`` before the name.
        mask_alpha: opacity of the mask colour (0: outlines only, for images whose colours
            matter).
        mask_outline: also draw each mask's outline in its class colour.
        min_size: smallest long side of the result, pixels (1 keeps the image's size).
        font_size: caption text size in pixels (default: 14, larger on canvases over
            1008 px).

    Returns:
        RGB image of size ``(k * W, k * H)`` with ``k = upscale_factor(H, W, min_size)``.

    Raises:
        ValueError: an argument's length or shape does not match ``boxes`` or ``image``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"draw_detections: image must be (H, W, 3) RGB, got {image.shape}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    for arg, values in (("labels", labels), ("names", names), ("scores", scores)):
        _check_length(arg, values, n)
    _check_length("novel", novel, n)
    _check_length("masks", masks, n)
    height, width = image.shape[:2]
    if masks is not None and n and tuple(np.shape(masks)[1:]) != (height, width):
        raise ValueError(
            f"draw_detections: masks are {tuple(np.shape(masks)[1:])}, image is {(height, width)}"
        )
    novel_flags = [bool(v) for v in novel] if novel is not None else [False] * n

    canvas = image.astype(np.float32)
    if masks is not None:
        for mask, label in zip(masks, labels):
            colour = np.array(class_colour(int(label)), dtype=np.float32)
            canvas[mask] = canvas[mask] * (1.0 - mask_alpha) + colour * mask_alpha
    out = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    k = upscale_factor(height, width, min_size)
    if k > 1:  # masks were blended first: the enlarged masks stay on their pixel blocks
        out = out.resize((width * k, height * k), Image.Resampling.NEAREST)
    size = out.size
    scaled = np.round(boxes * k).astype(np.int64)
    scaled[:, [0, 2]] = scaled[:, [0, 2]].clip(0, size[0])
    scaled[:, [1, 3]] = scaled[:, [1, 3]].clip(0, size[1])
    scaled[:, 2] = np.maximum(scaled[:, 2], scaled[:, 0] + 1)
    scaled[:, 3] = np.maximum(scaled[:, 3], scaled[:, 1] + 1)

    font = load_font(font_size or _font_size(size))
    line_width = max(2, max(size) // 400)
    texts = [
        label_text(str(name), None if scores is None else float(s), flag)
        for name, s, flag in zip(names, scores if scores is not None else [None] * n, novel_flags)
    ]
    order = (
        list(range(n))
        if scores is None
        else [int(i) for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")]
    )
    placed = layout_labels(scaled, texts, size, font, order)

    if masks is not None and mask_outline and n:
        pixels = np.asarray(out).copy()
        for i in reversed(order):
            big = np.asarray(masks[i], dtype=bool)
            if k > 1:
                big = big.repeat(k, axis=0).repeat(k, axis=1)
            pixels[_mask_edge(big, max(1, line_width // 2))] = class_colour(int(labels[i]))
        out = Image.fromarray(pixels)

    draw = ImageDraw.Draw(out)
    for i in reversed(order):  # the best detections are drawn last, on top
        colour = class_colour(int(labels[i]))
        x0, y0, x1, y1 = (int(v) for v in scaled[i])
        rect = (x0, y0, x1 - 1, y1 - 1)
        if novel_flags[i]:
            _dashed_rectangle(draw, rect, colour, line_width)
        else:
            draw.rectangle(rect, outline=colour, width=line_width)
    for i, label in enumerate(placed):
        if label is not None and label.leader is not None:
            draw.line(label.leader, fill=class_colour(int(labels[i])), width=1)
    top, _ = _line_metrics(font)
    for i, label in enumerate(placed):
        if label is None:
            continue
        colour = class_colour(int(labels[i]))
        x0, y0, x1, y1 = label.rect
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
        left = font.getbbox(label.text)[0]
        xy = (x0 + _LABEL_PAD_X - left, y0 + _LABEL_PAD_Y - top)
        draw.text(xy, label.text, fill=_text_colour(colour), font=font)
    return out


def title_bar_height(font_size: int = FONT_SIZE) -> int:
    """Height in pixels of the title bar :func:`compose_panels` puts over each panel."""
    return _line_metrics(load_font(font_size + 2))[1] + 2 * _TITLE_PAD


def compose_panels(
    panels: Sequence[Image.Image],
    titles: Sequence[str],
    *,
    gap: int = PANEL_GAP,
    font_size: int = FONT_SIZE,
) -> Image.Image:
    """Put images side by side, each under a dark title bar with its title.

    Args:
        panels: RGB images (of any sizes; shorter ones are padded at the bottom).
        titles: one title per panel (cut short with ".." when wider than its panel).
        gap: pixels between panels.
        font_size: caption size of the panels; titles are 2 px larger.

    Returns:
        RGB image of width ``sum(widths) + gap * (len(panels) - 1)`` and height
        ``title_bar_height(font_size) + max(heights)``.

    Raises:
        ValueError: no panels, or not one title per panel.
    """
    if not panels or len(titles) != len(panels):
        raise ValueError(
            f"compose_panels: need one title per panel, got {len(panels)} panels and "
            f"{len(titles)} titles"
        )
    font = load_font(font_size + 2)
    bar = title_bar_height(font_size)
    top, _ = _line_metrics(font)
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    out = Image.new("RGB", (width, bar + max(p.height for p in panels)), _PANEL_BG)
    draw = ImageDraw.Draw(out)
    x = 0
    for panel, title in zip(panels, titles):
        draw.rectangle((x, 0, x + panel.width - 1, bar - 1), fill=_TITLE_BG)
        text = title
        while len(text) > 2 and font.getlength(text) > panel.width - 2 * _TITLE_PAD:
            text = text[:-3] + ".."
        draw.text((x + _TITLE_PAD, _TITLE_PAD - top), text, fill=_TITLE_FG, font=font)
        out.paste(panel.convert("RGB"), (x, bar))
        x += panel.width + gap
    return out
