"""OV-Shapes in memory: vocabulary and split, scenes (determinism, masks, occlusion), captions."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from ovdet.data.synthetic import (
    COLOURS,
    OVShapesConfig,
    OVShapesGenerator,
    build_categories,
)
from ovdet.data.synthetic.attributes import DEFAULT_COLOURS, DEFAULT_SHAPES
from ovdet.data.synthetic.captions import CaptionObject, make_captions
from ovdet.data.synthetic.scene import tight_box
from ovdet.data.synthetic.shapes import shape_mask


def test_default_vocabulary_and_split():
    cats = build_categories()
    assert len(cats) == 36
    assert [c.id for c in cats] == list(range(1, 37))
    assert cats[0].name == "red circle" and cats[-1].name == "orange cross"
    novel = [c for c in cats if c.novel]
    base = [c for c in cats if not c.novel]
    assert len(novel) == 9
    # Every attribute value has base categories, and is novel in exactly one or two.
    for attr, values in (("colour", DEFAULT_COLOURS), ("shape", DEFAULT_SHAPES)):
        in_base = Counter(getattr(c, attr) for c in base)
        in_novel = Counter(getattr(c, attr) for c in novel)
        assert set(in_base) == set(values)
        assert all(1 <= in_novel[v] <= 2 for v in values), in_novel
    # Fixed default split (a change here changes every OV-Shapes dataset).
    assert [c.name for c in novel] == [
        "red triangle",
        "red hexagon",
        "green cross",
        "blue square",
        "yellow circle",
        "yellow star",
        "purple triangle",
        "orange circle",
        "orange hexagon",
    ]
    assert build_categories() == cats
    assert [c.novel for c in build_categories(split_seed=1)] != [c.novel for c in cats]


def test_texture_vocabulary_and_errors():
    cats = build_categories(textures=("plain", "striped", "dotted"))
    assert len(cats) == 108
    names = [c.name for c in cats]
    assert "plain red circle" in names and "striped blue star" in names
    assert len(set(names)) == 108
    base = [c for c in cats if not c.novel]
    for attr in ("colour", "shape", "texture"):
        assert {getattr(c, attr) for c in base} == {getattr(c, attr) for c in cats}
    # No class name is contained in another (captions are matched by substring).
    assert not any(a != b and a in b for a in names for b in names)
    with pytest.raises(ValueError, match="unknown colours"):
        build_categories(colours=("red", "mauve"))
    with pytest.raises(ValueError, match="lower novel_fraction"):
        build_categories(("red", "green"), ("circle", "square"), novel_fraction=0.9)
    with pytest.raises(ValueError, match="min_objects"):
        OVShapesConfig(min_objects=5, max_objects=2)


def test_config_roundtrip():
    cfg = OVShapesConfig(image_size=(96, 128), colours=tuple(COLOURS)[:7], textures=True)
    assert cfg.image_size == (96, 128)
    again = OVShapesConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.categories == cfg.categories
    with pytest.raises(ValueError, match="unknown parameters"):
        OVShapesConfig.from_dict({"colors": ["red"]})


@pytest.mark.parametrize(
    "shape", ["circle", "square", "triangle", "star", "hexagon", "cross", "ring", "heart"]
)
def test_shape_masks(shape):
    mask = shape_mask(shape, (64, 64), (32.0, 32.0), 20.0, angle=0.3)
    area = int(mask.sum())
    assert 0.2 * np.pi * 400 < area < 1.05 * np.pi * 400
    x, y, w, h = tight_box(mask)
    assert 11 <= x and x + w <= 53 and 11 <= y and y + h <= 53
    # Clipped at the border instead of failing.
    assert shape_mask(shape, (64, 64), (2.0, 60.0), 20.0).sum() < area


def test_scene_determinism_masks_and_occlusion():
    cfg = OVShapesConfig(image_size=96, min_objects=4, max_objects=6)
    gen = OVShapesGenerator(cfg)
    a, b = gen.scene(3, "train", 5), gen.scene(3, "train", 5)
    assert np.array_equal(a.image, b.image) and a.captions == b.captions
    assert [o.category.id for o in a.objects] == [o.category.id for o in b.objects]
    assert not np.array_equal(a.image, gen.scene(4, "train", 5).image)
    assert not np.array_equal(a.image, gen.scene(3, "val", 5).image)
    assert a.image.shape == (96, 96, 3) and a.image.dtype == np.uint8

    occluded = 0
    for index in range(12):
        scene = gen.scene(0, "train", index)
        assert 1 <= len(scene.objects) <= 6
        union = np.zeros((96, 96), dtype=int)
        for obj in scene.objects:
            assert obj.mask.shape == (96, 96) and obj.mask.dtype == bool
            assert obj.area == int(obj.mask.sum()) > 0
            assert obj.bbox == tight_box(obj.mask)
            assert obj.area >= cfg.min_visible * obj.full_area
            occluded += obj.area < obj.full_area
            union += obj.mask
            # Visible pixels carry the object's colour (striped/dotted off by default).
            mean = scene.image[obj.mask].mean(axis=0)
            assert np.abs(mean - np.array(obj.category.rgb)).max() < 45
        assert union.max() <= 1  # visible masks are disjoint
    assert occluded > 0  # occlusion happens


def test_captions_name_every_object():
    cats = {c.name: c for c in build_categories()}
    objs = [
        CaptionObject(cats["red circle"], (0, 0, 10, 10)),
        CaptionObject(cats["red circle"], (50, 0, 10, 10)),
        CaptionObject(cats["orange star"], (20, 40, 10, 10)),
    ]
    caps = make_captions(objs, "noisy", 3, np.random.default_rng(0), num_captions=5)
    assert len(caps) == 5 and len(set(caps)) == 5
    for cap in caps:
        assert "two red circles" in cap.lower()
        assert re.search(r"\b(an|one) orange star\b", cap.lower())
    # Two single objects: spatial relations, when used, are true.
    pair = [
        CaptionObject(cats["blue square"], (0, 0, 10, 10)),
        CaptionObject(cats["green cross"], (80, 5, 10, 10)),
    ]
    for seed in range(10):
        for cap in make_captions(pair, "gradient", 0, np.random.default_rng(seed), 4):
            low = cap.lower()
            assert "blue square" in low and "green cross" in low
            assert "blue square to the right of" not in low and "green cross to the left" not in low
            assert "scribbles" not in low and "thin lines" not in low  # no strokes drawn
    empty = make_captions([], "blotchy", 0, np.random.default_rng(0), 3)
    assert len(empty) == 3 and all("background" in c for c in empty)
