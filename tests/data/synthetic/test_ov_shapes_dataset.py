"""OV-Shapes on disk: COCO json / captions / split files, determinism, CLI, registration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes, load_split
from ovdet.data.synthetic.dataset import FILES

CONFIG = OVShapesConfig(image_size=128, min_objects=3, max_objects=6, captions_per_image=3)
JSONS = ("train_all", "train_base", "val", "captions_train", "captions_val")


def _read(root: Path, key: str) -> dict:
    return json.loads((root / FILES[key]).read_text())


def _pixels(root: Path, split: str) -> dict[str, np.ndarray]:
    folder = root / FILES[f"images_{split}"]
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ov_shapes")
    summary = generate_ov_shapes(
        root, num_train=16, num_val=6, seed=7, config=CONFIG, progress=False
    )
    assert summary["train"]["images"] == 16 and summary["val"]["images"] == 6
    assert summary["num_classes"] == 36 and summary["num_novel"] == 9
    assert summary["train"]["novel_objects_unannotated"] > 0
    return root


def test_files_load_with_pycocotools(dataset):
    for key in JSONS:
        coco = COCO(str(dataset / FILES[key]))
        assert len(coco.getImgIds()) == (6 if key.endswith("val") else 16)
        for img in coco.dataset["images"]:
            path = dataset / FILES["images_val" if key.endswith("val") else "images_train"]
            assert (path / img["file_name"]).is_file()
            assert (img["height"], img["width"]) == (128, 128)
    train_ids = {i["id"] for i in _read(dataset, "train_all")["images"]}
    val_ids = {i["id"] for i in _read(dataset, "val")["images"]}
    assert train_ids == set(range(1, 17)) and val_ids == set(range(17, 23))
    assert not list(dataset.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_masks_boxes_areas(dataset):
    for key in ("train_all", "val"):
        data = _read(dataset, key)
        assert data["annotations"], key
        for ann in data["annotations"]:
            assert ann["iscrowd"] == 0 and isinstance(ann["segmentation"]["counts"], str)
            m = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert m.shape == (128, 128)
            ys, xs = np.nonzero(m)
            tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert ann["bbox"] == [float(v) for v in tight]
            assert ann["area"] == float(m.sum())
            x, y, w, h = ann["bbox"]
            assert m[int(y) : int(y + h), int(x) : int(x + w)].sum() == m.sum()


def test_base_split_and_category_ids(dataset):
    split = load_split(dataset)
    assert len(split["base"]) == 27 and len(split["novel"]) == 9
    cats = {c["id"]: c for c in split["categories"]}
    assert sorted(cats) == list(range(1, 37))
    novel_ids = {i for i, c in cats.items() if c["name"] in split["novel"]}
    for attr in ("colour", "shape"):
        assert {c[attr] for c in cats.values() if c["split"] == "base"} == set(
            split["attributes"][attr]
        )
    full, base, val = (_read(dataset, k) for k in ("train_all", "train_base", "val"))
    # Same category ids everywhere; train_base lists base categories only.
    assert full["categories"] == val["categories"] == split["categories"]
    assert base["categories"] == [c for c in split["categories"] if c["id"] not in novel_ids]
    assert full["images"] == base["images"]
    # train_base = train_all minus every novel annotation, ids kept.
    assert not [a for a in base["annotations"] if a["category_id"] in novel_ids]
    assert base["annotations"] == [
        a for a in full["annotations"] if a["category_id"] not in novel_ids
    ]
    novel_images = {a["image_id"] for a in full["annotations"] if a["category_id"] in novel_ids}
    assert novel_images  # novel objects are in the training images, unannotated in base
    assert OVShapesConfig.from_dict(split["params"]) == CONFIG
    assert split["seed"] == 7


def test_captions_name_every_object(dataset):
    names = {c["id"]: c["name"] for c in load_split(dataset)["categories"]}
    for split, inst in (("captions_train", "train_all"), ("captions_val", "val")):
        caps, data = _read(dataset, split), _read(dataset, inst)
        assert [i["id"] for i in caps["images"]] == [i["id"] for i in data["images"]]
        assert len(caps["annotations"]) == 3 * len(caps["images"])
        assert [c["id"] for c in caps["annotations"]] == list(
            range(1, len(caps["annotations"]) + 1)
        )
        present: dict[int, set[str]] = {i["id"]: set() for i in data["images"]}
        for ann in data["annotations"]:
            present[ann["image_id"]].add(names[ann["category_id"]])
        for cap in caps["annotations"]:
            text = cap["caption"].lower()
            for name in names.values():
                assert (name in text) == (name in present[cap["image_id"]]), (name, text)


def test_deterministic_and_worker_independent(dataset, tmp_path):
    again = tmp_path / "again"
    generate_ov_shapes(
        again, num_train=16, num_val=6, seed=7, config=CONFIG, workers=2, progress=False
    )
    for key in JSONS:
        assert (again / FILES[key]).read_bytes() == (dataset / FILES[key]).read_bytes(), key
    assert (again / "split.json").read_bytes() == (dataset / "split.json").read_bytes()
    for split in ("train", "val"):
        a, b = _pixels(dataset, split), _pixels(again, split)
        assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    other = tmp_path / "other"
    generate_ov_shapes(other, num_train=4, num_val=0, seed=8, config=CONFIG, progress=False)
    a, b = _pixels(dataset, "train"), _pixels(other, "train")
    assert not any(np.array_equal(a[k], b[k]) for k in b)
    # Image i does not depend on how many images are generated.
    assert all(np.array_equal(a[k], _pixels(again, "train")[k]) for k in list(a)[:4])


def test_cli_in_process(tmp_path, capsys):
    from ovdet.cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "data",
            "ov-shapes",
            "--out",
            str(out),
            "--num-train",
            "8",
            "--num-val",
            "4",
            "--seed",
            "1",
            "--image-size",
            "128",
            "--min-objects",
            "2",
            "--max-objects",
            "4",
            "--quiet",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "36 (27 base, 9 novel)" in printed and "train: 8 images" in printed
    split = load_split(out)
    assert split["num_train"] == 8 and split["params"]["image_size"] == [128, 128]
    assert len(_read(out, "val")["images"]) == 4
    assert main(["data", "ov-shapes", "--out", str(out), "--colours", "red,mauve"]) == 2
    assert "mauve" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "no-such-dataset"])


def test_textures_cli(tmp_path):
    from ovdet.cli import main

    out = tmp_path / "tex"
    assert (
        main(
            [
                "data",
                "ov-shapes",
                "--out",
                str(out),
                "--num-train",
                "2",
                "--num-val",
                "1",
                "--image-size",
                "96",
                "--textures",
                "--quiet",
            ]
        )
        == 0
    )
    split = load_split(out)
    assert len(split["categories"]) == 108 and split["attributes"]["texture"] == [
        "plain",
        "striped",
        "dotted",
    ]


def test_register_ov_shapes(dataset):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from ovdet.data.synthetic import register_ov_shapes

    names = register_ov_shapes(dataset, prefix="test_ov_shapes_reg", replace=True)
    splits = ("train_base", "train_all", "val")
    grounding = ("grounding_train_base", "grounding_train_all", "grounding_val")
    assert names == [f"test_ov_shapes_reg_{s}" for s in (*splits, *grounding)]
    split = load_split(dataset)
    base_meta, val_meta = (MetadataCatalog.get(n) for n in (names[0], names[2]))
    assert base_meta.thing_classes == split["base"]
    assert val_meta.thing_classes == [c["name"] for c in split["categories"]]
    assert val_meta.novel_classes == split["novel"]
    assert val_meta.evaluator_type == "ov_coco"
    assert base_meta.captions_json == str(dataset.resolve() / "captions_train.json")
    assert val_meta.captions_json == str(dataset.resolve() / "captions_val.json")
    base_dicts = DatasetCatalog.get(names[0])
    all_dicts = DatasetCatalog.get(names[1])
    assert len(base_dicts) == len(all_dicts) == 16
    assert max(a["category_id"] for d in base_dicts for a in d["annotations"]) < 27
    assert sum(len(d["annotations"]) for d in all_dicts) > sum(
        len(d["annotations"]) for d in base_dicts
    )
    # Contiguous ids of train_base line up with the base names of the split.
    full = {a["id"]: a for a in _read(dataset, "train_all")["annotations"]}
    names_by_id = {c["id"]: c["name"] for c in split["categories"]}
    for d in base_dicts[:4]:
        for a in d["annotations"]:
            assert "segmentation" in a and isinstance(a["segmentation"], dict)
    base_anns = [a for d in base_dicts for a in d["annotations"]]
    json_base = _read(dataset, "train_base")["annotations"]
    for a, j in zip(base_anns, json_base):
        assert base_meta.thing_classes[a["category_id"]] == names_by_id[j["category_id"]]
        assert full[j["id"]]["category_id"] == j["category_id"]
    # Registering again with the same arguments is a no-op.
    assert register_ov_shapes(dataset, prefix="test_ov_shapes_reg") == names
