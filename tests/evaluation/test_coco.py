"""evaluate_coco_results and OVCOCOEvaluator on the real COCO sample."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet.data import register_ov_dataset
from ovdet.evaluation import OVCOCOEvaluator, evaluate_coco_results

NOVEL = ["bus", "skateboard"]  # COCO ids 6 and 41, both in the sample


def _hand_coco_eval(gt_path, results, iou_type, cat_ids=None):
    """Reference: plain pycocotools, as a user would run it."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dets = copy.deepcopy(results)
        for d in dets:
            d.pop("bbox" if iou_type == "segm" else "segmentation")
        ev = COCOeval(gt, gt.loadRes(dets), iou_type)
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats * 100


def test_gt_as_detections_give_100(sample_gt, perfect_results):
    res = evaluate_coco_results(sample_gt, perfect_results, novel=NOVEL, iou_types=("bbox", "segm"))
    for iou_type in ("bbox", "segm"):
        m = res[iou_type]
        for key in ("AP", "AP50", "AP75", "AP_base", "AP50_base", "AP_novel", "AP50_novel"):
            assert m[key] == pytest.approx(100.0), (iou_type, key)
        # every size range has objects in the sample
        assert all(m[k] == pytest.approx(100.0) for k in ("APs", "APm", "APl"))


def test_crowd_region_detection_is_ignored(sample_gt, gt_dict, perfect_results):
    crowd = next(a for a in gt_dict["annotations"] if a["iscrowd"])
    extra = {k: crowd[k] for k in ("image_id", "category_id", "bbox")}
    res = evaluate_coco_results(sample_gt, perfect_results + [{**extra, "score": 1.0}])
    assert res["bbox"]["AP"] == pytest.approx(100.0)
    assert "AP_novel" not in res["bbox"]  # no split requested


def test_false_positive_on_empty_image_lowers_ap(sample_gt, perfect_results):
    dets = [{**d, "score": 0.9} for d in perfect_results]
    dets.append({"image_id": 89, "category_id": 1, "bbox": [0, 0, 50, 50], "score": 1.0})
    res = evaluate_coco_results(sample_gt, dets, novel=NOVEL)["bbox"]
    assert res["AP_base"] < 100.0 and res["AP_novel"] == pytest.approx(100.0)


def test_noisy_detections_match_plain_pycocotools(sample_gt, gt_dict, noisy_results):
    res = evaluate_coco_results(sample_gt, noisy_results, novel=NOVEL, iou_types=("bbox", "segm"))
    novel_ids = [6, 41]
    base_ids = sorted({c["id"] for c in gt_dict["categories"]} - set(novel_ids))
    for iou_type in ("bbox", "segm"):
        ref = _hand_coco_eval(sample_gt, noisy_results, iou_type)
        m = res[iou_type]
        got = [m[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
        np.testing.assert_allclose(got, ref[:6], rtol=0, atol=1e-9)
        ref_novel = _hand_coco_eval(sample_gt, noisy_results, iou_type, novel_ids)
        ref_base = _hand_coco_eval(sample_gt, noisy_results, iou_type, base_ids)
        assert m["AP_novel"] == pytest.approx(ref_novel[0], abs=1e-9)
        assert m["AP50_novel"] == pytest.approx(ref_novel[1], abs=1e-9)
        assert m["AP_base"] == pytest.approx(ref_base[0], abs=1e-9)
        assert m["AP50_base"] == pytest.approx(ref_base[1], abs=1e-9)
        assert 0 < m["AP"] < 100
    # pinned (seeded) so that the noisy fixture cannot drift silently
    assert res["bbox"]["AP50"] == pytest.approx(63.7204, abs=1e-3)
    assert res["bbox"]["AP_novel"] == pytest.approx(30.0, abs=1e-3)
    assert res["segm"]["AP"] == pytest.approx(14.4739, abs=1e-3)


def test_novel_without_gt_is_nan(sample_gt, perfect_results):
    res = evaluate_coco_results(sample_gt, perfect_results, novel=["dog", "cat"])["bbox"]
    assert math.isnan(res["AP_novel"]) and res["AP_base"] == pytest.approx(100.0)


def test_empty_results_are_zero_with_warning(sample_gt):
    with pytest.warns(UserWarning, match="no detections"):
        res = evaluate_coco_results(sample_gt, [], novel=NOVEL, iou_types=("bbox", "segm"))
    assert set(res) == {"bbox", "segm"}
    assert all(v == 0.0 for v in res["bbox"].values()) and "AP50_novel" in res["bbox"]


def test_bad_results_named(sample_gt, perfect_results, tmp_path):
    with pytest.raises(ValueError, match=r"category ids \[999\]"):
        evaluate_coco_results(sample_gt, [{**perfect_results[0], "category_id": 999}])
    with pytest.raises(ValueError, match=r"image ids \[5\]"):
        evaluate_coco_results(sample_gt, [{**perfect_results[0], "image_id": 5}])
    broken = [dict(r) for r in perfect_results]
    del broken[3]["score"]
    with pytest.raises(ValueError, match=r"results\[3\] has no 'score'"):
        evaluate_coco_results(sample_gt, broken)
    with pytest.raises(ValueError, match=r"results\[0\] has no 'segmentation'"):
        evaluate_coco_results(
            sample_gt,
            [{k: v for k, v in r.items() if k != "segmentation"} for r in perfect_results],
            iou_types=("segm",),
        )
    with pytest.raises(ValueError, match="novel classes not among.*unicorn"):
        evaluate_coco_results(sample_gt, perfect_results, novel=["unicorn"])
    path = tmp_path / "pred.json"
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="must be a json list"):
        evaluate_coco_results(sample_gt, path)


@pytest.fixture(scope="module")
def eval_dataset(sample_gt):
    name = "ovdet_test_eval_sample"
    register_ov_dataset(name, sample_gt, sample_gt.parent / "images", novel=NOVEL)
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_evaluator_round_trip_from_gt(eval_dataset, tmp_path):
    evaluator = OVCOCOEvaluator(eval_dataset, output_dir=str(tmp_path), tasks=("bbox", "segm"))
    evaluator.reset()
    for d in DatasetCatalog.get(eval_dataset):
        anns = [a for a in d["annotations"] if not a.get("iscrowd", 0)]
        inst = Instances((d["height"], d["width"]))
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in anns]
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.ones(len(anns))
        inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        from detectron2.structures import polygons_to_bitmask

        masks = [polygons_to_bitmask(a["segmentation"], d["height"], d["width"]) for a in anns]
        inst.pred_masks = torch.from_numpy(
            np.stack(masks) if masks else np.zeros((0, d["height"], d["width"]), bool)
        )
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": inst}])
    res = evaluator.evaluate()
    assert set(res) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP50_base", "AP50_novel", "AP_base", "AP_novel"):
            assert res[task][key] == pytest.approx(100.0), (task, key)
    saved = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert len(saved) == 35 and {r["category_id"] for r in saved} >= {6, 41}
