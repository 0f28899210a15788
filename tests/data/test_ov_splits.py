"""OV-COCO / OV-LVIS split derivation and the prepare scripts."""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovdet.data import register_ov_coco
from ovdet.data.builtin_meta import (
    OV_COCO_BASE_IDS,
    OV_COCO_IDS,
    OV_COCO_NOVEL_IDS,
    lvis_categories,
)
from ovdet.data.ov_splits import make_ov_lvis_train, make_ov_lvis_val

REPO = Path(__file__).resolve().parents[2]


def _script_main(name: str):
    return runpy.run_path(str(REPO / "datasets" / name))["main"]


@pytest.fixture
def coco_root(tmp_path, coco_sample):
    """A fake COCO root whose train and val jsons are both the real sample."""
    json_file, images = coco_sample
    ann = tmp_path / "coco" / "annotations"
    ann.mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (ann / f"instances_{split}.json").write_text(json_file.read_text())
        os.symlink(images, tmp_path / "coco" / split)
    return tmp_path / "coco"


def test_prepare_ov_coco(coco_root, capsys):
    assert _script_main("prepare_ov_coco.py")(["--coco-root", str(coco_root)]) == 0
    out = coco_root / "annotations" / "ov_coco"
    src = json.loads((coco_root / "annotations" / "instances_train2017.json").read_text())
    base = json.loads((out / "instances_train2017_base.json").read_text())
    assert [c["id"] for c in base["categories"]] == list(OV_COCO_BASE_IDS)
    assert len(base["images"]) == len(src["images"]) == 6  # all images kept
    assert {a["category_id"] for a in base["annotations"]} <= set(OV_COCO_BASE_IDS)
    novel_in_src = [a for a in src["annotations"] if a["category_id"] in OV_COCO_NOVEL_IDS]
    assert len(novel_in_src) == 2  # bus and skateboard are in the sample
    assert len(base["annotations"]) == 36 - 2
    oracle = json.loads((out / "instances_train2017_all.json").read_text())
    assert [c["id"] for c in oracle["categories"]] == list(OV_COCO_IDS)
    assert len(oracle["annotations"]) == 36
    val = json.loads((out / "instances_val2017_all.json").read_text())
    assert len(val["categories"]) == 65 and len(val["images"]) == 6
    assert {a["category_id"] for a in val["annotations"]} <= set(OV_COCO_IDS)
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporaries


def test_builtin_ov_coco_names_on_prepared_sample(coco_root):
    assert _script_main("prepare_ov_coco.py")(["--coco-root", str(coco_root)]) == 0
    old_root = Path(MetadataCatalog.get("ov_coco_val").image_root).parents[1]
    register_ov_coco(coco_root.parent, replace=True)
    try:
        val = DatasetCatalog.get("ov_coco_val")
        assert len(val) == 6
        meta = MetadataCatalog.get("ov_coco_val")
        novel = {meta.thing_classes.index(n) for n in meta.novel_classes}
        assert {a["category_id"] for d in val for a in d["annotations"]} & novel
        train = DatasetCatalog.get("ov_coco_train_base")
        assert not {a["category_id"] for d in train for a in d["annotations"]} - set(range(48))
        assert os.path.isfile(train[0]["file_name"])
    finally:
        register_ov_coco(old_root, replace=True)


def test_prepare_ov_coco_missing_inputs(tmp_path, capsys):
    assert _script_main("prepare_ov_coco.py")(["--coco-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "instances_train2017.json" in err and "instances_val2017.json" in err


def test_prepare_ov_coco_rejects_foreign_categories(coco_root, capsys):
    path = coco_root / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["categories"][4]["name"] = "plane"
    path.write_text(json.dumps(data))
    assert _script_main("prepare_ov_coco.py")(["--coco-root", str(coco_root)]) == 2
    assert "id 5: expected 'airplane'" in capsys.readouterr().err


def _tiny_lvis(coco_sample) -> tuple[dict, set[int]]:
    """An LVIS-v1-shaped json: the sample's images and boxes on real LVIS categories."""
    src = json.loads(coco_sample[0].read_text())
    cats = list(lvis_categories())
    rare = [c["id"] for c in cats if c["frequency"] == "r"][:2]
    frequent = [c["id"] for c in cats if c["frequency"] == "f"][:3]
    pool = rare + frequent
    anns = [
        {**a, "category_id": pool[i % len(pool)]}
        for i, a in enumerate(x for x in src["annotations"] if not x["iscrowd"])
    ]
    images = [
        {k: v for k, v in img.items() if k != "file_name"}
        | {"neg_category_ids": [], "not_exhaustive_category_ids": []}
        for img in src["images"]
    ]
    return {"images": images, "annotations": anns, "categories": cats}, set(rare)


def test_ov_lvis_train_and_val(coco_sample, tmp_path, capsys):
    data, rare = _tiny_lvis(coco_sample)
    train = make_ov_lvis_train(data)
    assert len(train["categories"]) == 1203  # ids line up with 1203-row embeddings
    assert not [a for a in train["annotations"] if a["category_id"] in rare]
    assert len(train["annotations"]) == len(data["annotations"]) - sum(
        a["category_id"] in rare for a in data["annotations"]
    )
    assert all(c["image_count"] == 0 for c in train["categories"] if c["frequency"] == "r")
    assert train["images"][0]["file_name"] == "val2017/000000128372.jpg"
    assert "file_name" not in data["images"][0]  # input untouched
    val = make_ov_lvis_val(data)
    assert val["annotations"] == data["annotations"]
    # the script, end to end
    root = tmp_path / "lvis"
    root.mkdir()
    (root / "lvis_v1_train.json").write_text(json.dumps(data))
    (root / "lvis_v1_val.json").write_text(json.dumps(data))
    assert _script_main("prepare_ov_lvis.py")(["--lvis-root", str(root)]) == 0
    assert (root / "ov_lvis" / "lvis_v1_train_base.json").is_file()
    assert (root / "ov_lvis" / "lvis_v1_val.json").is_file()
    assert _script_main("prepare_ov_lvis.py")(["--lvis-root", str(tmp_path)]) == 2
    assert "lvis_v1_train.json" in capsys.readouterr().err


def test_ov_lvis_rejects_non_lvis_json(coco_sample):
    data = json.loads(coco_sample[0].read_text())
    with pytest.raises(ValueError, match="coco_url"):
        make_ov_lvis_train({**data, "images": [{"id": 1, "height": 1, "width": 1}]})
    for img in data["images"]:
        img.setdefault("coco_url", "http://x/val2017/a.jpg")
    with pytest.raises(ValueError, match="frequency"):
        make_ov_lvis_train(data)
