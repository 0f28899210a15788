"""OV-Shapes generator options for independent worlds: random-colour textures, photo
backgrounds, attribute subsets, validation, the world presets, and the default world pinned."""

from __future__ import annotations

import colorsys
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovdet.cli import main as cli
from ovdet.data.synthetic import OVShapesConfig, OVShapesGenerator, generate_ov_shapes, load_split
from ovdet.data.synthetic.attributes import ALL_TEXTURES, COLOURS, SHAPES
from ovdet.data.synthetic.background import PhotoBackgrounds, default_photo_dir, render_background
from ovdet.data.synthetic.scene import scene_rng, tight_box
from ovdet.data.synthetic.worlds import DEFAULT_SUITE, WORLDS, resolve_worlds
from ovdet.utils.io import write_json

RANDOM_TEXTURES = OVShapesConfig(
    image_size=96,
    textures=True,
    colour_mode="random",
    texture_values=("plain", "striped", "checkered"),
)
PHOTO = OVShapesConfig(image_size=96, background="photo", min_objects=3)


def _digest(root: Path, *, without_grounding: bool = False) -> str:
    """sha256 of a generated dataset: every json byte for byte, every PNG by its pixels (the
    PNG encoder's bytes may change with zlib; the pixels may not). ``without_grounding``:
    leave out the grounding files (added later) and their entries in ``split.json``."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if without_grounding and path.name.startswith("grounding_"):
            continue
        h.update(path.relative_to(root).as_posix().encode())
        if without_grounding and path.name == "split.json":
            split = json.loads(path.read_text(encoding="utf-8"))
            split["files"] = {k: v for k, v in split["files"].items() if "grounding" not in k}
            earlier = root.parent / f"{root.name}_split_without_grounding.json"
            write_json(earlier, split, indent=2, compact=True)
            h.update(earlier.read_bytes())
            earlier.unlink()
        elif path.suffix == ".png":
            pixels = np.asarray(Image.open(path).convert("RGB"))
            h.update(str(pixels.shape).encode())
            h.update(pixels.tobytes())
        else:
            h.update(path.read_bytes())
    return h.hexdigest()


# Computed before the world options existed (same files, jsons and split as then); the
# grounding files, added later, are left out (every earlier file stays byte-identical).
PINNED = {
    "default": "f27f80ead46f70a72aad49bc007a1d3eed69b19be82e68118c8797e62169c742",
    "textures": "233a36c851b30c0db2ea4ca2bc0e4dadd087936bf8d51678e818ba42ce4cd94a",
}


@pytest.mark.parametrize(
    "name,config",
    [("default", OVShapesConfig()), ("textures", OVShapesConfig(image_size=96, textures=True))],
)
def test_earlier_worlds_unchanged(tmp_path, name, config):
    generate_ov_shapes(tmp_path, num_train=4, num_val=2, seed=0, config=config, progress=False)
    assert _digest(tmp_path, without_grounding=True) == PINNED[name]
    params = load_split(tmp_path)["params"]
    assert not {"colour_mode", "texture_values", "background", "photo_dir"} & set(params)


@pytest.mark.parametrize(
    "config",
    [
        RANDOM_TEXTURES,
        PHOTO,
        OVShapesConfig(image_size=96, colours=("cyan", "pink"), shapes=("ring", "heart", "star")),
        WORLDS["hard"].config(96),
    ],
    ids=["random_textures", "photo", "subset", "hard"],
)
def test_options_deterministic_and_recorded(tmp_path, config):
    for run in ("a", "b"):
        generate_ov_shapes(
            tmp_path / run, num_train=3, num_val=2, seed=5, config=config, progress=False
        )
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    split = load_split(tmp_path / "a")
    assert OVShapesConfig.from_dict(split["params"]) == config
    for key in ("colour_mode", "background"):
        if getattr(config, key) != getattr(OVShapesConfig(), key):
            assert split["params"][key] == getattr(config, key)
    gen = OVShapesGenerator(config)
    assert not np.array_equal(gen.scene(5, "train", 0).image, gen.scene(6, "train", 0).image)
    if config.background == "photo":
        names = sorted(p.name for p in default_photo_dir().glob("*.jpg"))
        assert split["photos"]["dir"] is None
        assert [name for name, _ in split["photos"]["files"]] == names
    else:
        assert "photos" not in split


def test_random_colour_textures(tmp_path):
    cats = RANDOM_TEXTURES.categories
    assert len(cats) == 3 * 6 and sum(c.novel for c in cats) == 4
    names = [c.name for c in cats]
    assert "striped circle" in names and "checkered cross" in names
    assert not any(set(name.split()) & set(COLOURS) for name in names)
    assert all(c.colour is None and c.rgb is None for c in cats)
    base = [c for c in cats if not c.novel]
    for attr in ("texture", "shape"):  # every value keeps base classes
        assert {getattr(c, attr) for c in base} == {getattr(c, attr) for c in cats}
    gen = OVShapesGenerator(RANDOM_TEXTURES)
    hues = defaultdict(list)
    for index in range(30):
        scene = gen.scene(0, "train", index)
        for obj in scene.objects:
            hues[obj.category.name].append(colorsys.rgb_to_hsv(*np.divide(obj.rgb, 255))[0])
            pixels = scene.image[obj.mask].astype(float)
            spread = pixels.std(axis=0).max()
            if obj.category.texture == "plain":
                assert spread < 40  # one colour, jittered and shaded
            elif obj.area > 150:
                assert spread > 20  # a visible pattern of a second colour
    spread_classes = [name for name, h in hues.items() if len(h) >= 3 and np.ptp(h) > 0.3]
    assert len(spread_classes) >= 5  # colours vary within a class
    generate_ov_shapes(
        tmp_path, num_train=3, num_val=0, seed=0, config=RANDOM_TEXTURES, progress=False
    )
    split = load_split(tmp_path)
    assert set(split["attributes"]) == {"shape", "texture"}
    anns = json.loads((tmp_path / "train_all.json").read_text())["annotations"]
    assert anns and all(len(a["rgb"]) == 3 for a in anns)
    assert all("colour" not in c for c in split["categories"])


def test_photo_backgrounds_keep_masks_and_boxes_exact():
    gen = OVShapesGenerator(PHOTO)
    backgrounds = []
    for index in range(8):
        scene = gen.scene(0, "val", index)
        assert scene.background == "photo"
        # the background alone: the same rng draws it first
        bg, kind, strokes = render_background(
            scene_rng(0, "val", index), (96, 96), 3, 12, PhotoBackgrounds()
        )
        assert kind == "photo" and strokes == scene.num_strokes
        backgrounds.append(bg)
        union = np.zeros((96, 96), dtype=int)
        for obj in scene.objects:
            assert obj.area == int(obj.mask.sum()) > 0 and obj.bbox == tight_box(obj.mask)
            union += obj.mask
        assert union.max() <= 1  # visible masks are disjoint
        changed = (scene.image != bg).any(axis=-1)
        assert not (changed & (union == 0)).any()  # nothing painted outside the masks
        assert changed[union == 1].mean() > 0.95  # the masks are painted
    assert len({b.tobytes() for b in backgrounds}) == 8


def test_photo_folder_of_your_own(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.jpg"):
        Image.fromarray(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    photos = PhotoBackgrounds(tmp_path)
    assert [p.name for p in photos.files] == ["a.jpg", "b.png"]
    crop = photos.crop(np.random.default_rng(1), (40, 70))
    assert crop.shape == (40, 70, 3) and crop.dtype == np.uint8
    config = OVShapesConfig(image_size=64, background="photo", photo_dir=str(tmp_path))
    out = tmp_path / "data"
    generate_ov_shapes(out, num_train=2, num_val=1, config=config, progress=False)
    record = load_split(out)["photos"]
    assert record["dir"] == str(tmp_path) and [n for n, _ in record["files"]] == ["a.jpg", "b.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="photo_dir.*no .jpg"):
        OVShapesGenerator(OVShapesConfig(background="photo", photo_dir=empty))
    with pytest.raises(FileNotFoundError, match="photo_dir.*not a folder"):
        generate_ov_shapes(
            tmp_path / "x",
            num_train=1,
            num_val=0,
            config=OVShapesConfig(background="photo", photo_dir=tmp_path / "missing"),
        )
    assert not (tmp_path / "x").exists()  # checked before anything is written


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(colour_mode="rainbow"), "colour_mode"),
        (dict(colour_mode="random"), "colour_mode"),
        (dict(colour_mode="random", textures=True, colours=("red", "green")), "colours"),
        (dict(textures=True, texture_values=("plain", "zigzag")), "texture_values"),
        (dict(textures=True, texture_values=()), "texture_values"),
        (dict(texture_values=("plain", "striped")), "texture_values"),
        (dict(background="video"), "background"),
        (dict(photo_dir="photos/"), "photo_dir"),
        (dict(colours=("red", "mauve")), "colours"),
        (dict(shapes=("circle", "circle")), "shapes"),
        (dict(min_size=0.5, max_size=0.2), "min_size"),
    ],
)
def test_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        OVShapesConfig(**kwargs)


def test_cli_options_and_errors(tmp_path, capsys):
    argv = ["data", "ov-shapes", "--out", str(tmp_path / "w"), "--num-train", "2"]
    argv += ["--num-val", "1", "--image-size", "64", "--quiet", "--world", "hard"]
    argv += ["--texture-values", "striped,dotted", "--max-objects", "3", "--min-size", "0.2"]
    assert cli(argv) == 0
    params = load_split(tmp_path / "w")["params"]
    assert params["texture_values"] == ["striped", "dotted"]  # the option overrides the world
    assert params["background"] == "photo" and params["colour_mode"] == "random"
    assert params["max_objects"] == 3 and params["min_size"] == 0.2
    capsys.readouterr()
    bad = ["data", "ov-shapes", "--out", str(tmp_path / "bad"), "--colour-mode", "random"]
    assert cli(bad) == 2
    assert "colour_mode" in capsys.readouterr().err


def test_attribute_subsets_keep_every_value_in_base():
    rng = np.random.default_rng(0)
    for trial in range(40):
        colours = tuple(rng.permutation(list(COLOURS))[: rng.integers(2, 9)])
        shapes = tuple(rng.permutation(list(SHAPES))[: rng.integers(2, 9)])
        random_colours = trial % 4 == 3
        textures = tuple(rng.permutation(list(ALL_TEXTURES))[: rng.integers(2, 5)])
        config = OVShapesConfig(
            image_size=64,
            colours=colours if not random_colours else OVShapesConfig().colours,
            shapes=shapes,
            textures=trial % 2 == 1,
            texture_values=textures if trial % 2 == 1 else OVShapesConfig().texture_values,
            colour_mode="random" if random_colours else "class",
            novel_fraction=float(rng.choice([0.15, 0.25, 0.3])),
            split_seed=trial,
        )
        cats = config.categories
        novel = [c for c in cats if c.novel]
        assert len(novel) == round(config.novel_fraction * len(cats))
        base = [c for c in cats if not c.novel]
        for attr in cats[0].attributes():
            values = {c.attributes()[attr] for c in cats}
            assert {c.attributes()[attr] for c in base} == values, (trial, attr)
        scene = OVShapesGenerator(config).scene(0, "train", trial)
        assert all(o.category in cats for o in scene.objects)


def test_world_presets():
    assert set(DEFAULT_SUITE) <= set(WORLDS)
    default = WORLDS["default"].config(160)
    assert default == OVShapesConfig(image_size=160)
    splits = set()
    for world in WORLDS.values():
        cats = world.config(160).categories
        splits.add(tuple(c.name for c in cats if c.novel))
        names = [c.name for c in cats]  # captions are matched by substring
        assert not any(a != b and a in b for a in names for b in names), world.name
        assert 0 < sum(c.novel for c in cats) < len(cats)
    assert len(splits) == len(WORLDS) - 1  # photo shares the default classes, no one else
    assert [w.name for w in resolve_worlds(["standard"])] == list(DEFAULT_SUITE)
    assert [w.name for w in resolve_worlds(["all"])] == list(WORLDS)
    with pytest.raises(ValueError, match="unknown world 'texture'"):
        resolve_worlds(["texture"])
    with pytest.raises(ValueError, match="twice"):
        resolve_worlds(["default", "standard"])
