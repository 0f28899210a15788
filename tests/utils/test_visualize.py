"""``ovdet.utils.visualize``: enlarged drawings aligned with their boxes, labels that never
overlap and stay inside the canvas, novel classes dashed, two-panel figures, same bytes."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from ovdet.utils.visualize import (
    FONT_SIZE,
    MIN_SIZE,
    PANEL_GAP,
    class_colour,
    compose_panels,
    draw_detections,
    label_text,
    layout_labels,
    load_font,
    title_bar_height,
    upscale_factor,
)

GREY = (128, 128, 128)


def _grey(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def _crowded(n: int = 12, size: int = 160, seed: int = 0):
    """``n`` heavily overlapping boxes around the middle of a ``size`` px image."""
    rng = np.random.RandomState(seed)
    centres = size / 2 + rng.uniform(-size / 5, size / 5, (n, 2))
    half = rng.uniform(12, 35, (n, 2))
    boxes = np.concatenate([centres - half, centres + half], axis=1).clip(0, size)
    names = [f"{c} {s}" for c, s in zip(itertools.cycle(["purple", "orange", "green"]), range(n))]
    names = [f"{name} triangle" for name in names]
    scores = np.linspace(0.95, 0.31, n)
    return boxes, list(range(n)), names, scores


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_upscale_factor():
    assert MIN_SIZE == 512 and upscale_factor(160, 160) == 4  # 640: the least multiple >= 512
    assert upscale_factor(80, 100) == 6
    assert upscale_factor(600, 800) == 1
    assert upscale_factor(160, 160, min_size=1) == 1
    with pytest.raises(ValueError, match="0x5"):
        upscale_factor(0, 5)


def test_boxes_and_masks_drawn_at_the_scaled_coordinates():
    image = _grey(80, 100)
    boxes = np.array([[10.0, 20.0, 50.0, 60.0], [60.0, 30.0, 70.0, 40.0]])
    masks = np.zeros((2, 80, 100), dtype=bool)
    masks[1, 32:38, 62:68] = True
    vis = draw_detections(image, boxes, [0, 1], ["a", "b"], [0.9, 0.8], masks)
    assert vis.size == (600, 480)  # x6: the long side 100 -> 600 >= MIN_SIZE
    px = np.asarray(vis)
    c0, c1 = class_colour(0), class_colour(1)
    # box 0 spans x 60..299, y 120..359 on the canvas; its outline is 2 px wide, inside it
    assert tuple(px[240, 60]) == c0 and tuple(px[240, 61]) == c0
    assert tuple(px[240, 299]) == c0 and tuple(px[359, 180]) == c0
    assert tuple(px[240, 58]) == GREY and tuple(px[240, 300]) == GREY
    assert tuple(px[240, 62]) == GREY  # the inside is not painted
    assert tuple(px[40, 10]) == GREY  # where an unscaled box would have been drawn
    # box 1 spans x 360..419; its mask x 372..407, y 192..227: blended inside, outlined
    blended = (np.array(GREY, np.float32) * 0.55 + np.array(c1, np.float32) * 0.45).astype(np.uint8)
    assert tuple(px[210, 390]) == tuple(blended)
    assert tuple(px[210, 372]) == c1  # the mask's outline
    assert tuple(px[210, 369]) == GREY  # inside the box, outside the mask
    assert tuple(px[210, 360]) == c1  # the box's outline


def test_min_size_one_keeps_the_image_size():
    image = np.random.RandomState(0).randint(0, 256, (30, 40, 3), dtype=np.uint8)
    vis = draw_detections(image, np.zeros((0, 4)), [], [], [], min_size=1)
    assert np.array_equal(np.asarray(vis), image)  # nothing to draw: the image unchanged
    big = draw_detections(image, np.zeros((0, 4)), [], [], [])
    assert big.size == (520, 390)  # x13
    assert np.array_equal(np.asarray(big)[::13, ::13], image)  # nearest neighbour blocks


def test_crowded_labels_do_not_overlap_and_stay_inside():
    boxes, labels, names, scores = _crowded()
    vis = draw_detections(_grey(160, 160), boxes, labels, names, scores)
    k = upscale_factor(160, 160)
    texts = [label_text(n, s) for n, s in zip(names, scores)]
    placed = layout_labels(boxes * k, texts, vis.size, load_font(FONT_SIZE))
    shown = [p for p in placed if p is not None]
    assert len(shown) == len(boxes), "a label was left out although the canvas has room"
    for p in shown:
        x0, y0, x1, y1 = p.rect
        assert 0 <= x0 < x1 <= vis.width and 0 <= y0 < y1 <= vis.height
    for a, b in itertools.combinations(shown, 2):
        assert not _overlap(a.rect, b.rect), (a, b)
    # what was laid out is what was drawn: each label's corner has its class colour
    px = np.asarray(vis)
    for label, p in zip(labels, placed):
        assert tuple(px[p.rect[1], p.rect[0]]) == class_colour(label), p
    # every label touches its box or is joined to it by a leader line
    for box, p in zip(boxes * k, placed):
        gap_x = max(box[0] - p.rect[2], p.rect[0] - box[2], 0)
        gap_y = max(box[1] - p.rect[3], p.rect[1] - box[3], 0)
        assert p.leader is not None or max(gap_x, gap_y) <= 2, p


def test_labels_prefer_a_place_above_their_box():
    placed = layout_labels([[100, 100, 200, 150]], ["red circle 0.90"], (400, 300))
    x0, y0, x1, y1 = placed[0].rect
    assert (x0, y1) == (100, 100) and placed[0].leader is None
    # at the top edge the label cannot go above: it goes below instead, inside the canvas
    placed = layout_labels([[100, 0, 200, 50]], ["red circle 0.90"], (400, 300))
    assert placed[0].rect[1] == 50


def test_labels_shortened_or_left_out_only_without_room():
    font = load_font(FONT_SIZE)
    text = "purple triangle 0.57"
    wide = font.getbbox(text)[2]
    placed = layout_labels([[0, 0, 10, 10]], [text], (wide - 10, 100), font)
    assert placed[0].text != text and placed[0].text.endswith("0.57")  # shortened, not dropped
    assert layout_labels([[0, 0, 4, 4]], [text], (8, 8), font) == [None]  # nothing fits
    with pytest.raises(ValueError, match="2 texts for 1 boxes"):
        layout_labels([[0, 0, 4, 4]], ["a", "b"], (8, 8))


def test_novel_classes_are_dashed_and_starred():
    boxes = np.array([[20.0, 40.0, 140.0, 120.0]])
    solid = np.asarray(draw_detections(_grey(160, 160), boxes, [0], ["cat"], [0.9]))
    dashed = np.asarray(draw_detections(_grey(160, 160), boxes, [0], ["cat"], [0.9], novel=[True]))
    bottom = slice(81, 559)  # the bottom edge (y = 479), away from the label above the box
    colour = np.array(class_colour(0))
    assert (solid[479, bottom] == colour).all()
    on = (dashed[479, bottom] == colour).all(axis=1)
    assert 0.3 < on.mean() < 0.8  # dashes and gaps
    assert label_text("cat", 0.9, novel=True) == "*cat 0.90"
    assert label_text("*cat", None, novel=True) == "*cat"


def test_drawing_is_deterministic():
    boxes, labels, names, scores = _crowded()
    masks = np.zeros((len(boxes), 160, 160), dtype=bool)
    for m, (x0, y0, x1, y1) in zip(masks, boxes.astype(int)):
        m[y0:y1, x0:x1] = True

    def draw() -> bytes:
        image = np.random.RandomState(1).randint(0, 256, (160, 160, 3), dtype=np.uint8)
        pred = draw_detections(image, boxes, labels, names, scores, masks, novel=[0, 1] * 6)
        truth = draw_detections(image, boxes[:4], labels[:4], names[:4])
        return _png(compose_panels([truth, pred], ["ground truth", "prediction"]))

    assert draw() == draw()


def test_compose_panels_layout():
    left = Image.new("RGB", (640, 640), (255, 0, 0))
    right = Image.new("RGB", (640, 600), (0, 0, 255))
    out = compose_panels([left, right], ["ground truth", "prediction (score >= 0.30)"])
    bar = title_bar_height()
    assert out.size == (2 * 640 + PANEL_GAP, bar + 640)
    px = np.asarray(out)
    assert (px[bar:, :640] == (255, 0, 0)).all()
    assert (px[bar : bar + 600, 640 + PANEL_GAP :] == (0, 0, 255)).all()
    assert (px[:, 640 : 640 + PANEL_GAP] == 255).all()  # the gap
    # the title bars are dark with light text
    assert px[:bar, :640].mean() < 100 and px[:bar, :640].max() > 200
    with pytest.raises(ValueError, match="2 panels and 1 titles"):
        compose_panels([left, right], ["only one"])


def test_mismatched_arguments_name_the_culprit():
    boxes = np.zeros((2, 4))
    with pytest.raises(ValueError, match="names has 1 entries for 2 boxes"):
        draw_detections(_grey(10, 10), boxes, [0, 1], ["a"], [0.5, 0.5])
    with pytest.raises(ValueError, match="masks are"):
        draw_detections(_grey(10, 10), boxes, [0, 1], ["a", "b"], None, np.zeros((2, 5, 5), bool))
