"""evaluate_lvis_results / LVISOVEvaluator on an LVIS-shaped json made from the COCO sample."""

from __future__ import annotations

import json

import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.structures import Boxes, Instances

from ovdet.data import register_ov_dataset
from ovdet.evaluation import LVISOVEvaluator, evaluate_lvis_results

FREQ = {6: "r", 41: "r", 1: "f", 44: "f"}  # other categories: common


@pytest.fixture
def lvis_gt(gt_dict, tmp_path):
    used = {a["category_id"] for a in gt_dict["annotations"]}
    cats = [
        {"id": c["id"], "name": c["name"], "frequency": FREQ.get(c["id"], "c")}
        for c in gt_dict["categories"]
        if c["id"] in used
    ]
    images = [
        {**im, "neg_category_ids": [], "not_exhaustive_category_ids": []}
        for im in gt_dict["images"]
    ]
    anns = [a for a in gt_dict["annotations"] if not a["iscrowd"]]
    path = tmp_path / "lvis_gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_lvis_gt_as_detections(lvis_gt, perfect_results):
    res = evaluate_lvis_results(lvis_gt, perfect_results, ("bbox", "segm"))
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "APr", "APc", "APf"):
            assert res[task][key] == pytest.approx(100.0), (task, key)


def test_lvis_drops_missing_rare_and_errors(lvis_gt, perfect_results, gt_dict):
    no_rare = [r for r in perfect_results if r["category_id"] not in (6, 41)]
    res = evaluate_lvis_results(lvis_gt, no_rare)["bbox"]
    assert res["APr"] == pytest.approx(0.0) and res["APf"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match=r"category ids \[2\]"):
        evaluate_lvis_results(lvis_gt, [{**perfect_results[0], "category_id": 2}])
    with pytest.raises(ValueError, match="neg_category_ids"):
        evaluate_lvis_results(gt_dict, perfect_results)  # a COCO json is not an LVIS json


def test_lvis_evaluator(lvis_gt, perfect_results, tmp_path):
    name = "ovdet_test_lvis_sample"
    register_ov_dataset(name, lvis_gt, tmp_path, evaluator_type="ov_lvis")
    meta = MetadataCatalog.get(name)
    id_map = meta.thing_dataset_id_to_contiguous_id
    ev = LVISOVEvaluator(name, output_dir=str(tmp_path), tasks=("bbox",))
    ev.reset()
    for image_id in sorted({r["image_id"] for r in perfect_results}):
        dets = [r for r in perfect_results if r["image_id"] == image_id]
        inst = Instances((10, 10))
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in dets)]
        inst.pred_boxes = Boxes(torch.tensor(xyxy, dtype=torch.float32))
        inst.scores = torch.ones(len(dets))
        inst.pred_classes = torch.tensor([id_map[d["category_id"]] for d in dets])
        ev.process([{"image_id": image_id}], [{"instances": inst}])
    res = ev.evaluate()
    assert res["bbox"]["AP"] == pytest.approx(100.0) and res["bbox"]["APr"] == pytest.approx(100.0)
    assert (tmp_path / "lvis_instances_results.json").is_file()
