"""Grounding annotations: OV-Shapes writes caption spans that name each object, the grounding
loader refuses bad jsons with one clear message, the mapper keeps captions and phrases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T

from ovdet.data.grounding import GroundingFormatError, register_grounding_dataset
from ovdet.data.mapper import OVDatasetMapper
from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes, load_split
from ovdet.data.synthetic.attributes import ShapeCategory, plural
from ovdet.data.synthetic.captions import CaptionObject, make_captions, make_grounded_captions
from ovdet.data.synthetic.catalog import ov_shapes_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ovs_grounding")
    generate_ov_shapes(
        root, num_train=6, num_val=2, seed=2, config=OVShapesConfig(image_size=64), progress=False
    )
    return root


def test_generator_spans_decode_to_each_objects_name(root):
    split = load_split(root)
    assert split["files"]["grounding_train"] == "grounding_train.json"
    names = {c["id"]: c["name"] for c in split["categories"]}
    for part, instances in (("train", "train_all.json"), ("val", "val.json")):
        data = json.loads((root / f"grounding_{part}.json").read_text())
        plain = json.loads((root / instances).read_text())
        captions = json.loads((root / f"captions_{part}.json").read_text())
        by_image: dict[int, list[str]] = {}
        for c in captions["annotations"]:
            by_image.setdefault(c["image_id"], []).append(c["caption"])
        entries = {im["id"]: im for im in data["images"]}
        # one entry per (image, caption), same captions in the same order
        assert len(entries) == sum(len(v) for v in by_image.values())
        for im in data["images"]:
            assert by_image[im["original_img_id"]][im["caption_index"]] == im["caption"]
        boxes = {a["id"]: a for a in plain["annotations"]}
        for ann in data["annotations"]:
            caption = entries[ann["image_id"]]["caption"]
            ((s, e),) = ann["tokens_positive"]
            name = names[ann["category_id"]]
            words, shape = name.rsplit(" ", 1)
            assert caption[s:e] in (name, f"{words} {plural(shape)}")
            original = boxes[ann["original_id"]]
            assert original["bbox"] == ann["bbox"] and original["category_id"] == ann["category_id"]
            assert original["image_id"] == entries[ann["image_id"]]["original_img_id"]
        # every object of every captioned image is an annotation of each of its entries
        per_image = {}
        for a in plain["annotations"]:
            per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        per_entry = {}
        for a in data["annotations"]:
            per_entry[a["image_id"]] = per_entry.get(a["image_id"], 0) + 1
        for im in data["images"]:
            assert per_entry.get(im["id"], 0) == per_image.get(im["original_img_id"], 0)


def _cat(cid: int, colour: str, shape: str, texture: str | None = None) -> ShapeCategory:
    return ShapeCategory(id=cid, colour=colour, shape=shape, texture=texture, novel=False)


def test_repeated_and_nested_names_get_their_own_spans():
    # two classes written alike (a name that repeats in one caption) and a name inside another
    same_a, same_b = _cat(1, "red", "circle"), _cat(2, "red", "circle")
    outer, inner = _cat(3, "blue", "star", "striped"), _cat(4, "blue", "star")
    objects = [
        CaptionObject(same_a, (0, 0, 5, 5)),
        CaptionObject(same_b, (10, 0, 5, 5)),
        CaptionObject(outer, (20, 0, 5, 5)),
        CaptionObject(inner, (30, 0, 5, 5)),
        CaptionObject(inner, (40, 0, 5, 5)),
    ]
    rng = np.random.default_rng(0)
    grounded = make_grounded_captions(objects, "noisy", 0, rng, num_captions=8)
    texts = make_captions(objects, "noisy", 0, np.random.default_rng(0), num_captions=8)
    assert [g.text for g in grounded] == texts  # the same captions, the same use of the rng
    for g in grounded:
        a, b, s_outer, s_inner, s_inner2 = g.spans
        assert g.text[slice(*a)] == g.text[slice(*b)] == "red circle"
        assert a != b  # the repeated name: two distinct spans
        assert g.text[slice(*s_outer)] == "striped blue star"
        assert s_inner == s_inner2 and g.text[slice(*s_inner)] == "blue stars"
        # not the "blue star" inside "striped blue star"
        assert not s_outer[0] <= s_inner[0] < s_outer[1]


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def _grounding_dict() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 32, "width": 32, "caption": "a red circle"}
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "bbox": [2, 2, 10, 10],
                "category_id": 1,
                "iscrowd": 0,
                "area": 100,
                "tokens_positive": [[2, 12]],
            }
        ],
        "categories": [{"id": 1, "name": "red circle"}],
    }


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["images"][0].pop("caption"), r"images\[0\] \(id=1\) has no field 'caption'"),
        (
            lambda d: d["annotations"][0].update(tokens_positive=[[2, 40]]),
            r"annotations\[0\] \(id=1\): 'tokens_positive' span \[2, 40\] is outside the caption",
        ),
        (
            lambda d: d["annotations"][0].pop("tokens_positive"),
            r"annotations\[0\] \(id=1\) has no field 'tokens_positive'",
        ),
    ],
    ids=["no_caption", "span_outside", "no_tokens_positive"],
)
def test_bad_grounding_json_refused_naming_file_and_field(tmp_path, edit, message):
    data = _grounding_dict()
    edit(data)
    path = _write(tmp_path / "bad.json", data)
    name = f"grounding_bad_{tmp_path.name}"
    register_grounding_dataset(name, path, tmp_path)
    with pytest.raises(GroundingFormatError, match=message) as info:
        DatasetCatalog.get(name)
    assert str(path) in str(info.value) and len(str(info.value).splitlines()) == 1


def test_registered_root_and_mapper_keep_caption_and_phrases(root):
    name = ov_shapes_dataset(root, "grounding_train_base", prefix="ovs_grounding_test")
    dicts = DatasetCatalog.get(name)
    meta = MetadataCatalog.get(name)
    novel = {meta.thing_classes.index(n) for n in meta.novel_classes}
    assert all(a["category_id"] not in novel for d in dicts for a in d["annotations"])
    full = DatasetCatalog.get(ov_shapes_dataset(root, "grounding_train_all", "ovs_grounding_test"))
    assert sum(len(d["annotations"]) for d in full) > sum(len(d["annotations"]) for d in dicts)
    mapper = OVDatasetMapper(
        is_train=True,
        augmentations=[T.ResizeShortestEdge(64, 64)],
        image_format="BGR",
        use_instance_mask=True,
        instance_mask_format="bitmask",
        grounding=True,
    )
    record = next(d for d in full if len(d["annotations"]) >= 2)
    out = mapper(record)
    caption, phrases = out["caption"], out["tokens_positive"]
    inst = out["instances"]
    assert caption == record["caption"] and len(inst) == len(record["annotations"])
    for cls, phrase in zip(inst.gt_classes.tolist(), inst.gt_phrases.tolist()):
        ((s, e),) = phrases[phrase]
        words, shape = meta.thing_classes[cls].rsplit(" ", 1)
        assert caption[s:e] in (f"{words} {shape}", f"{words} {plural(shape)}")
    # a plural phrase names all its objects: one phrase each, shared
    assert len(phrases) == len(
        {tuple(map(tuple, a["tokens_positive"])) for a in record["annotations"]}
    )
    del record["caption"]
    with pytest.raises(KeyError, match="has no 'caption'"):
        mapper(record)


def test_old_root_without_grounding_files_is_refused_clearly(tmp_path, root):
    old = tmp_path / "old"
    old.mkdir()
    split = load_split(root)
    split["files"] = {k: v for k, v in split["files"].items() if "grounding" not in k}
    (old / "split.json").write_text(json.dumps(split))
    with pytest.raises(FileNotFoundError, match="has no grounding annotations"):
        ov_shapes_dataset(old, "grounding_train_base", prefix="ovs_grounding_old")
    assert ov_shapes_dataset(old, "train_base", prefix="ovs_grounding_old").endswith("train_base")
