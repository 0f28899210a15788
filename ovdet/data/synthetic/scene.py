"""Compose one OV-Shapes scene: background, objects with occlusion, annotations, captions.

Objects are placed one after another, each on top of the previous ones. A placement is
accepted only if every object (the new one and all those it covers) keeps at least
``min_visible`` of its full area visible; otherwise another position/size is tried, and
after ``placement_tries`` failures the object is skipped. Masks are the *visible* pixels,
boxes the tight boxes of those masks. Every category (novel ones included) is sampled
uniformly, so novel objects appear in training images -- unannotated in ``train_base``.

Each image is seeded by ``(seed, split, index)`` alone, so it does not depend on how many
images are generated, in which order, or by how many workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ovdet.data.synthetic.appearance import contrasting_colour, paint_object, random_colour
from ovdet.data.synthetic.attributes import ShapeCategory
from ovdet.data.synthetic.background import PhotoBackgrounds, render_background
from ovdet.data.synthetic.captions import CaptionObject, GroundedCaption, make_grounded_captions
from ovdet.data.synthetic.config import OVShapesConfig
from ovdet.data.synthetic.shapes import shape_mask

SPLITS: tuple[str, ...] = ("train", "val")


@dataclass(frozen=True)
class SceneObject:
    """One annotated object of a scene.

    Attributes:
        category: its category.
        mask: (H, W) bool visible pixels.
        bbox: tight box of ``mask``, XYWH in pixels (``x + w`` is one past the last column).
        area: number of visible pixels.
        full_area: pixels of the unoccluded shape.
        rgb: the nominal colour it was painted with (before jitter and shading): the class
            colour, or a random one (``colour_mode="random"``).
    """

    category: ShapeCategory
    mask: np.ndarray
    bbox: tuple[float, float, float, float]
    area: int
    full_area: int
    rgb: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Scene:
    """One generated image with its objects (in drawing order, bottom first) and captions.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        objects: annotated objects, every object painted in the image.
        captions: caption strings naming every object.
        background: background kind ("gradient", "blotchy", "noisy", "photo").
        num_strokes: distractor strokes drawn under the objects.
        grounded: per caption, its text and the character span naming each object (in
            ``objects`` order; see ``captions.make_grounded_captions``).
    """

    image: np.ndarray
    objects: list[SceneObject]
    captions: list[str]
    background: str
    num_strokes: int
    grounded: tuple[GroundedCaption, ...] = ()


def tight_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """XYWH tight box of a non-empty (H, W) bool mask (same as pycocotools ``toBbox``)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (
        float(cols[0]),
        float(rows[0]),
        float(cols[-1] - cols[0] + 1),
        float(rows[-1] - rows[0] + 1),
    )


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split`` ("train" / "val") for dataset ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"OV-Shapes: split must be one of {SPLITS}, got {split!r}")
    if seed < 0 or index < 0:
        raise ValueError(f"OV-Shapes: seed and index must be >= 0, got {seed}, {index}")
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), index]))


class OVShapesGenerator:
    """Generates OV-Shapes scenes.

    Args:
        config: generator parameters (categories and split included).

    Example::

        gen = OVShapesGenerator(OVShapesConfig(image_size=128))
        scene = gen.scene(seed=0, split="train", index=3)
        scene.image.shape, [o.category.name for o in scene.objects], scene.captions[0]
    """

    def __init__(self, config: OVShapesConfig | None = None) -> None:
        self.config = config or OVShapesConfig()
        self.categories: tuple[ShapeCategory, ...] = self.config.categories
        self.photos: PhotoBackgrounds | None = None
        if self.config.background == "photo":
            self.photos = PhotoBackgrounds(self.config.photo_dir)

    def scene(self, seed: int, split: str, index: int) -> Scene:
        """Scene ``index`` of ``split`` for dataset ``seed`` (deterministic)."""
        return self.sample(scene_rng(seed, split, index))

    def sample(self, rng: np.random.Generator) -> Scene:
        """A scene drawn with ``rng`` (consumed deterministically)."""
        cfg = self.config
        h, w = cfg.image_size
        image, background, num_strokes = render_background(
            rng, cfg.image_size, cfg.min_strokes, cfg.max_strokes, self.photos
        )
        num = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        short = min(h, w)
        log_lo, log_hi = math.log(cfg.min_size * short), math.log(cfg.max_size * short)
        placed: list[tuple[ShapeCategory, np.ndarray, int]] = []  # category, full mask, area
        visible: list[np.ndarray] = []
        for _ in range(num):
            category = self.categories[int(rng.integers(0, len(self.categories)))]
            for _try in range(cfg.placement_tries):
                radius = math.exp(rng.uniform(log_lo, log_hi)) / 2
                rx, ry = min(radius, w / 2), min(radius, h / 2)
                centre = (rng.uniform(rx, w - rx), rng.uniform(ry, h - ry))
                angle = rng.uniform(0, 2 * math.pi)
                mask = shape_mask(category.shape, (h, w), centre, radius, angle)
                area = int(mask.sum())
                if area < 16:
                    continue
                covered = [vis & ~mask for vis in visible]
                if all(
                    int(c.sum()) >= cfg.min_visible * full
                    for c, (_, _, full) in zip(covered, placed)
                ):
                    visible = [*covered, mask]
                    placed.append((category, mask, area))
                    break
        objects = []
        for (category, mask, full_area), vis in zip(placed, visible):
            rgb, second = category.rgb, None
            if cfg.colour_mode == "random":
                rgb = random_colour(rng)
                if category.texture not in (None, "plain"):
                    second = contrasting_colour(rng, rgb)
            paint_object(image, mask, rgb, category.texture, rng, second)
            objects.append(
                SceneObject(category, vis, tight_box(vis), int(vis.sum()), full_area, rgb)
            )
        grounded = make_grounded_captions(
            [CaptionObject(o.category, o.bbox) for o in objects],
            background,
            num_strokes,
            rng,
            cfg.captions_per_image,
        )
        captions = [c.text for c in grounded]
        return Scene(image, objects, captions, background, num_strokes, tuple(grounded))
