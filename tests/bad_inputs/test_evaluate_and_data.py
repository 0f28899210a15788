"""Bad inputs of ``ovdet evaluate`` and ``ovdet data check`` (and of dataset registration):
one case per kind, each asserting the exact outcome (the right AP, or the error and that it
names the culprit), through the ``ovdet`` command where a user would meet it.

Inputs are synthesised here in the shapes real tools write them: ``ovdet detect``'s
results.json / detections.json, detectron2's coco_instances_results.json and
instances_predictions.pth, mmdetection's bbox/segm json, YOLO exports, labelme2coco, CVAT
and Roboflow COCO exports, hand-edited json. Reference APs are plain pycocotools on
correctly joined inputs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet.cli import main as ovdet_main
from ovdet.data import COCOFormatError, register_ov_dataset
from ovdet.data.check import check_coco_dataset, check_registered_dataset
from ovdet.evaluation import evaluate_coco_results, evaluate_lvis_results

# ----------------------------------------------------------------------------- helpers


def coco_ap(gt: dict, results: list[dict], iou_type: str = "bbox") -> float:
    """Reference AP (percent): plain pycocotools on correctly joined inputs."""
    drop = "bbox" if iou_type == "segm" else "segmentation"
    dets = [{k: v for k, v in r.items() if k != drop} for r in copy.deepcopy(results)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0] * 100)


def polygon_rle(ann: dict, height: int, width: int) -> dict:
    rle = mask_util.merge(mask_util.frPyObjects(ann["segmentation"], height, width))
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def make_predictions(gt: dict, seed: int = 0, masks: bool = False) -> list[dict]:
    """Seeded detections with GT ids: jittered GT boxes (some missed), random scores, false
    positives; with ``masks`` the GT polygon as RLE."""
    rng = np.random.default_rng(seed)
    imgs = {im["id"]: im for im in gt["images"]}
    cats = sorted({a["category_id"] for a in gt["annotations"]})
    out = []
    for a in gt["annotations"]:
        if a.get("iscrowd") or rng.random() < 0.15:
            continue
        im = imgs[a["image_id"]]
        x, y, w, h = a["bbox"]
        jx, jy, jw, jh = rng.normal(0, 0.08, 4) * [w, h, w, h]
        x, y = float(max(0.0, x + jx)), float(max(0.0, y + jy))
        w = float(max(1.0, min(w + jw, im["width"] - x)))
        h = float(max(1.0, min(h + jh, im["height"] - y)))
        r = {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": [x, y, w, h],
            "score": float(rng.uniform(0.3, 1.0)),
        }
        if masks:
            r["segmentation"] = polygon_rle(a, im["height"], im["width"])
        out.append(r)
    for _ in range(8):
        im = imgs[int(rng.choice(sorted(imgs)))]
        w, h = rng.uniform(10, 100, 2)
        box = [float(rng.uniform(0, im["width"] - w)), float(rng.uniform(0, im["height"] - h))]
        r = {
            "image_id": im["id"],
            "category_id": int(rng.choice(cats)),
            "bbox": box + [float(w), float(h)],
            "score": float(rng.uniform(0.0, 0.5)),
        }
        if masks:
            rle = mask_util.frPyObjects(np.array([r["bbox"]]), im["height"], im["width"])[0]
            rle["counts"] = rle["counts"].decode("utf-8")
            r["segmentation"] = rle
        out.append(r)
    return out


def synthetic_gt(
    num_images: int = 8,
    cats: tuple[tuple[int, str], ...] = ((1, "cat"), (2, "dog"), (3, "bird")),
    size: int = 200,
    seed: int = 0,
    first_image_id: int = 1,
    first_ann_id: int = 1,
) -> dict:
    """Equal-size images, each with one box of every category at seeded positions."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for k in range(num_images):
        iid = first_image_id + k
        images.append({"id": iid, "file_name": f"img_{k:03d}.jpg", "height": size, "width": size})
        for cid, _ in cats:
            w, h = rng.uniform(20, 60, 2)
            x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
            anns.append(
                {
                    "id": first_ann_id + len(anns),
                    "image_id": iid,
                    "category_id": cid,
                    "bbox": [
                        round(float(x), 2),
                        round(float(y), 2),
                        round(float(w), 2),
                        round(float(h), 2),
                    ],
                    "area": round(float(w * h), 2),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": cid, "name": name, "supercategory": "thing"} for cid, name in cats]
    return {"images": images, "annotations": anns, "categories": categories}


def perfect(gt: dict) -> list[dict]:
    """Every non-crowd GT box as a detection (distinct scores)."""
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": list(a["bbox"]),
            "score": 1.0 - 0.001 * k,
        }
        for k, a in enumerate(gt["annotations"])
        if not a.get("iscrowd")
    ]


@dataclass
class Ctx:
    tmp: Path
    gt: dict  # the real COCO sample (a fresh copy per case)
    gt_path: Path
    images: Path
    capsys: pytest.CaptureFixture

    def write(self, name: str, obj) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, (bytes, str)):
            path.write_bytes(obj if isinstance(obj, bytes) else obj.encode())
        else:
            path.write_text(json.dumps(obj))
        return path

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = ovdet_main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def evaluate(self, gt, pred, *extra: str) -> tuple[int, dict | None, str]:
        """``ovdet evaluate --json``: (exit status, metrics or None, stderr)."""
        gt_path = gt if isinstance(gt, Path) else self.write("gt.json", gt)
        pred_path = pred if isinstance(pred, Path) else self.write("pred.json", pred)
        rc, out, err = self.run("evaluate", "--gt", gt_path, "--pred", pred_path, "--json", *extra)
        return rc, (json.loads(out) if rc == 0 else None), err


def refused(ctx_result, *needles: str) -> None:
    """Exit status 2, one error line naming every needle."""
    rc, metrics, err = ctx_result
    assert rc == 2, f"expected a refusal, got rc={rc} metrics={metrics} stderr={err}"
    line = next(x for x in err.splitlines() if ": error: " in x)
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"


def scored(ctx_result, expected: float, iou_type: str = "bbox", key: str = "AP") -> str:
    """Exit status 0 and the metric equal to the reference; returns stderr."""
    rc, metrics, err = ctx_result
    assert rc == 0, f"expected AP {expected:.4f}, got rc={rc} stderr={err}"
    assert metrics[iou_type][key] == pytest.approx(expected, abs=1e-9), (metrics, err)
    return err


# ----------------------------------------------------------------------------- the id join
def _detect_style(ctx: Ctx, results: list[dict], names: bool) -> list[dict]:
    """As ``ovdet detect`` writes them: images 1..N in input (sorted path) order, classes
    1..C in vocabulary (alphabetical here) order; with ``names`` file_name/category_name."""
    imgs = sorted(ctx.gt["images"], key=lambda im: im["file_name"])
    img_id = {im["id"]: k + 1 for k, im in enumerate(imgs)}
    cat_name = {c["id"]: c["name"] for c in ctx.gt["categories"]}
    vocab = sorted(cat_name.values())
    out = []
    for r in results:
        d = dict(
            r,
            image_id=img_id[r["image_id"]],
            category_id=vocab.index(cat_name[r["category_id"]]) + 1,
        )
        if names:
            d["file_name"] = str(ctx.images / ctx_file(ctx, r["image_id"]))
            d["category_name"] = cat_name[r["category_id"]]
        out.append(d)
    return out


def ctx_file(ctx: Ctx, image_id: int) -> str:
    return next(im["file_name"] for im in ctx.gt["images"] if im["id"] == image_id)


def case_detect_results_with_names(ctx: Ctx):
    """GT ids are COCO's (not 1..N), its categories are in COCO order, not the vocabulary's:
    with names the join is by name and the AP is the correctly joined one."""
    preds = make_predictions(ctx.gt)
    err = scored(
        ctx.evaluate(ctx.gt_path, _detect_style(ctx, preds, names=True)), coco_ap(ctx.gt, preds)
    )
    assert "categories by name (8 names matched" in err and "images by file name (6 by" in err


def case_detect_results_without_names(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    refused(
        ctx.evaluate(ctx.gt_path, _detect_style(ctx, preds, names=False)),
        "image ids [1, 2, 3, 4, 5, 6] are not in the ground truth",
        "ovdet detect",
    )


def case_detect_detections_json(ctx: Ctx):
    """detect's detections.json: a COCO dataset of detections with its own ids and names."""
    preds = make_predictions(ctx.gt)
    dets = _detect_style(ctx, preds, names=False)
    imgs = sorted(ctx.gt["images"], key=lambda im: im["file_name"])
    vocab = sorted(c["name"] for c in ctx.gt["categories"])
    dataset = {
        "images": [
            {
                "id": k + 1,
                "file_name": f"photos/{im['file_name']}",
                "height": im["height"],
                "width": im["width"],
            }
            for k, im in enumerate(imgs)
        ],
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(vocab)],
        "annotations": [
            dict(d, id=k + 1, area=d["bbox"][2] * d["bbox"][3], iscrowd=0)
            for k, d in enumerate(dets)
        ],
    }
    err = scored(ctx.evaluate(ctx.gt_path, dataset), coco_ap(ctx.gt, preds))
    assert "categories by name" in err and "images by file name" in err


def _renumbered_gt(ctx: Ctx) -> tuple[dict, dict, dict]:
    """The sample with image ids 1..6 (in json order, not file order) and categories 1..80."""
    gt = copy.deepcopy(ctx.gt)
    img = {im["id"]: k + 1 for k, im in enumerate(ctx.gt["images"])}
    cat = {c["id"]: k + 1 for k, c in enumerate(ctx.gt["categories"])}
    for im in gt["images"]:
        im["id"] = img[im["id"]]
    for c in gt["categories"]:
        c["id"] = cat[c["id"]]
    for a in gt["annotations"]:
        a["image_id"], a["category_id"] = img[a["image_id"]], cat[a["category_id"]]
    return gt, img, cat


def case_category_ids_in_vocabulary_order(ctx: Ctx):
    """Images right, classes numbered in vocabulary order: refused by the category test."""
    gt, img, _ = _renumbered_gt(ctx)
    vocab = sorted(c["name"] for c in ctx.gt["categories"])
    names = {c["id"]: c["name"] for c in ctx.gt["categories"]}
    preds = [
        dict(r, image_id=img[r["image_id"]], category_id=vocab.index(names[r["category_id"]]) + 1)
        for r in make_predictions(ctx.gt)
    ]
    refused(
        ctx.evaluate(gt, preds), "category ids do not look like the ground truth's", "--trust-ids"
    )


def case_image_ids_in_another_order(ctx: Ctx):
    """Equal-size images numbered in another order: refused by the image test."""
    gt = synthetic_gt()
    preds = perfect(gt)
    shifted = [dict(r, image_id=r["image_id"] % 8 + 1) for r in preds]
    refused(ctx.evaluate(gt, shifted), "image ids do not look like the ground truth's", "file_name")


def case_correct_ids_verified(ctx: Ctx):
    gt, img, cat = _renumbered_gt(ctx)
    preds = [
        dict(r, image_id=img[r["image_id"]], category_id=cat[r["category_id"]])
        for r in make_predictions(ctx.gt)
    ]
    err = scored(ctx.evaluate(gt, preds), coco_ap(gt, preds))
    assert "verified image ids" in err and "category ids (" in err


def case_weak_detector_needs_trust_ids(ctx: Ctx):
    """Right ids, but boxes that overlap nothing: refused; --trust-ids scores it."""
    gt = synthetic_gt()
    preds = [
        dict(r, bbox=[(r["bbox"][0] + 100) % 140, (r["bbox"][1] + 100) % 140, 20.0, 20.0])
        for r in perfect(gt)
    ]
    refused(ctx.evaluate(gt, preds), "image ids do not look like", "--trust-ids")
    err = scored(ctx.evaluate(gt, preds, "--trust-ids"), coco_ap(gt, preds))
    assert "not verified (trusted)" in err


# ----------------------------------------------------------------------------- other detectors
def case_detectron2_coco_instances_results(ctx: Ctx):
    preds = make_predictions(ctx.gt, masks=True)
    path = ctx.write("inference/coco_instances_results.json", preds)
    rc, metrics, err = ctx.evaluate(ctx.gt_path, path, "--iou-types", "bbox,segm")
    scored((rc, metrics, err), coco_ap(ctx.gt, preds, "bbox"))
    scored((rc, metrics, err), coco_ap(ctx.gt, preds, "segm"), "segm")


def case_detectron2_instances_predictions_pth(ctx: Ctx):
    """detectron2's .pth: contiguous class indices, mapped to the GT's sorted ids."""
    preds = make_predictions(ctx.gt)
    contiguous = {cid: k for k, cid in enumerate(sorted(c["id"] for c in ctx.gt["categories"]))}
    per_image: dict[int, list] = {}
    for r in preds:
        per_image.setdefault(r["image_id"], []).append(
            dict(r, category_id=contiguous[r["category_id"]])
        )
    path = ctx.tmp / "instances_predictions.pth"
    torch.save([{"image_id": i, "instances": v} for i, v in per_image.items()], path)
    err = scored(ctx.evaluate(ctx.gt_path, path), coco_ap(ctx.gt, preds))
    assert "contiguous index" in err


def case_mmdetection_bbox_and_segm_json(ctx: Ctx):
    """mmdetection writes results.bbox.json and results.segm.json (GT ids)."""
    preds = make_predictions(ctx.gt, seed=3, masks=True)
    bbox = ctx.write(
        "results.bbox.json",
        [{k: r[k] for k in ("image_id", "bbox", "score", "category_id")} for r in preds],
    )
    segm = ctx.write("results.segm.json", preds)
    scored(ctx.evaluate(ctx.gt_path, bbox), coco_ap(ctx.gt, preds, "bbox"))
    rc, metrics, err = ctx.evaluate(ctx.gt_path, segm, "--iou-types", "segm")
    scored((rc, metrics, err), coco_ap(ctx.gt, preds, "segm"), "segm")


def case_yolo_zero_based_category_ids(ctx: Ctx):
    """A YOLO export: class indices from 0, image_id = file stem, file_name, rounded values."""
    preds = make_predictions(ctx.gt)
    order = sorted(c["id"] for c in ctx.gt["categories"])
    yolo = [
        {
            "image_id": ctx_file(ctx, r["image_id"]).rsplit(".", 1)[0] + "_x",
            "file_name": ctx_file(ctx, r["image_id"]),
            "category_id": order.index(r["category_id"]),
            "bbox": [round(v, 3) for v in r["bbox"]],
            "score": round(r["score"], 5),
        }
        for r in preds
    ]
    refused(ctx.evaluate(ctx.gt_path, yolo), "category ids [0", "0-based class indices (YOLO")


def case_yolo_on_roboflow_export(ctx: Ctx):
    """Roboflow GT (unused category 0, classes 1..3) + YOLO 0-based ids: all ids exist in the
    GT, but the boxes contradict them: refused, with the off-by-one hint."""
    gt = synthetic_gt(cats=((1, "Platelets"), (2, "RBC"), (3, "WBC")), first_image_id=0)
    gt["categories"].insert(0, {"id": 0, "name": "cells", "supercategory": "none"})
    yolo = [
        dict(r, category_id=r["category_id"] - 1, file_name=f"img_{r['image_id']:03d}.jpg")
        for r in perfect(gt)
    ]
    refused(ctx.evaluate(gt, yolo), "category ids do not look like", "start at 0 (YOLO)")


def case_yolo_numeric_stem_ids(ctx: Ctx):
    """image_id = int(file stem) (COCO file names): the GT's own ids, scored as such."""
    preds = make_predictions(ctx.gt)
    yolo = [dict(r, image_id=int(ctx_file(ctx, r["image_id"]).split(".")[0])) for r in preds]
    scored(ctx.evaluate(ctx.gt_path, yolo), coco_ap(ctx.gt, preds))


def case_image_id_is_file_name(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    named = [dict(r, image_id=ctx_file(ctx, r["image_id"])) for r in preds]
    err = scored(ctx.evaluate(ctx.gt_path, named), coco_ap(ctx.gt, preds))
    assert "images by file name (6 by same path" in err


def case_image_id_is_file_stem(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    named = [dict(r, image_id=ctx_file(ctx, r["image_id"]).split(".")[0]) for r in preds]
    err = scored(ctx.evaluate(ctx.gt_path, named), coco_ap(ctx.gt, preds))
    assert "6 by stem" in err


def case_file_name_relative_to_image_root(ctx: Ctx):
    """GT file names with a folder, shared basenames: matched by the path under --image-root."""
    gt = synthetic_gt(num_images=4)
    for k, im in enumerate(gt["images"]):
        im["file_name"] = f"{'ab'[k % 2]}/x{k // 2}.jpg"  # a/x0.jpg b/x0.jpg a/x1.jpg b/x1.jpg
    preds = perfect(gt)
    by_id = {im["id"]: im["file_name"] for im in gt["images"]}
    root = ctx.tmp / "root"
    root.mkdir()
    named = [dict(r, file_name=str(root / by_id[r["image_id"]]), image_id=0) for r in preds]
    err = scored(ctx.evaluate(gt, named, "--image-root", root), 100.0)
    assert "4 by relative to the image root" in err
    err = scored(ctx.evaluate(gt, named), 100.0)
    assert "4 by trailing path" in err
    bases = [dict(r, file_name=by_id[r["image_id"]].split("/")[1]) for r in preds]
    refused(ctx.evaluate(gt, bases), "ambiguous basename", "--image-root")


def case_category_names_other_spelling(ctx: Ctx):
    """Names that differ in case and '_' from the GT's are matched; unknown ones are named."""
    preds = make_predictions(ctx.gt)
    names = {c["id"]: c["name"] for c in ctx.gt["categories"]}
    spelled = [
        dict(r, category_name=names[r["category_id"]].upper().replace(" ", "_")) for r in preds
    ]
    scored(ctx.evaluate(ctx.gt_path, spelled), coco_ap(ctx.gt, preds))
    spelled[0]["category_name"] = "persons"
    refused(ctx.evaluate(ctx.gt_path, spelled), "'persons' (close: ['person'])", "--drop-unknown")


def case_lvis_with_names(ctx: Ctx):
    """LVIS ground truth (no file_name: coco_url) with named predictions."""
    used = {a["category_id"] for a in ctx.gt["annotations"]}
    freq = {6: "r", 41: "r", 1: "f"}
    gt = {
        "images": [
            {k: v for k, v in im.items() if k != "file_name"}
            | {"neg_category_ids": [], "not_exhaustive_category_ids": []}
            for im in ctx.gt["images"]
        ],
        "annotations": [a for a in ctx.gt["annotations"] if not a["iscrowd"]],
        "categories": [
            {
                "id": c["id"],
                "name": c["name"].replace(" ", "_"),
                "frequency": freq.get(c["id"], "c"),
            }
            for c in ctx.gt["categories"]
            if c["id"] in used
        ],
    }
    preds = [r for r in make_predictions(ctx.gt) if r["category_id"] in used]
    ref = evaluate_lvis_results(gt, preds)["bbox"]
    names = {c["id"]: c["name"] for c in ctx.gt["categories"]}
    named = [
        dict(r, image_id=ctx_file(ctx, r["image_id"]), category_name=names[r["category_id"]])
        for r in preds
    ]
    rc, metrics, err = ctx.evaluate(ctx.write("lvis.json", gt), named, "--lvis")
    scored((rc, metrics, err), ref["AP"])
    scored((rc, metrics, err), ref["APr"], key="APr")


# ----------------------------------------------------------------------------- prediction files
def case_gt_file_given_as_predictions(ctx: Ctx):
    refused(ctx.evaluate(ctx.gt_path, ctx.gt_path), "no 'score'", "swapped --gt and --pred")


def case_results_given_as_gt(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    refused(ctx.evaluate(preds, ctx.gt_path), "json.not_object", "a json list (a results file?)")


def case_empty_prediction_list(ctx: Ctx):
    rc, metrics, err = ctx.evaluate(ctx.gt_path, [])
    assert rc == 0 and metrics["bbox"]["AP"] == 0.0 and "warning: no detections" in err


def case_missing_score(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    del preds[3]["score"]
    refused(ctx.evaluate(ctx.gt_path, preds), "pred.json[3] has no 'score'")


def case_score_as_string(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[2]["score"] = "0.9"
    refused(ctx.evaluate(ctx.gt_path, preds), 'pred.json[2] has score="0.9"', "remove the quotes")


def case_score_nan(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[1]["score"] = float("nan")
    refused(ctx.evaluate(ctx.gt_path, preds), "pred.json[1] has score=nan", "NaN cannot be ranked")


def case_scores_are_logits(ctx: Ctx):
    """Scores outside [0, 1]: a warning, and the AP of the same ranking."""
    preds = make_predictions(ctx.gt)
    logits = [dict(r, score=float(np.log(r["score"] / (1.0001 - r["score"])) * 3)) for r in preds]
    err = scored(ctx.evaluate(ctx.gt_path, logits), coco_ap(ctx.gt, preds))
    assert "warning" in err and "score outside [0, 1]" in err


def case_bbox_nan(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[4]["bbox"][2] = float("nan")
    refused(ctx.evaluate(ctx.gt_path, preds), "pred.json[4] has bbox=", "NaN or infinite")


def case_bbox_negative_size(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[5]["bbox"][3] = -12.0
    refused(
        ctx.evaluate(ctx.gt_path, preds), "pred.json[5] has bbox=", "negative box width or height"
    )


def case_bbox_zero_size(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[6]["bbox"][2] = 0.0
    err = scored(ctx.evaluate(ctx.gt_path, preds), coco_ap(ctx.gt, preds))
    assert "pred.json: 1 predictions: [6] has bbox=" in err and "zero-size boxes" in err


def case_bbox_numbers_as_strings(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[0]["bbox"] = [str(v) for v in preds[0]["bbox"]]
    refused(ctx.evaluate(ctx.gt_path, preds), "pred.json[0] has bbox=", "remove the quotes")


def case_bbox_xyxy(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    xyxy = [
        dict(
            r,
            bbox=[
                r["bbox"][0],
                r["bbox"][1],
                r["bbox"][0] + r["bbox"][2],
                r["bbox"][1] + r["bbox"][3],
            ],
        )
        for r in preds
    ]
    refused(ctx.evaluate(ctx.gt_path, xyxy), "boxes look like [x1, y1, x2, y2]")


def case_bbox_normalised(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    size = {im["id"]: (im["width"], im["height"]) for im in ctx.gt["images"]}
    norm = []
    for r in preds:
        w, h = size[r["image_id"]]
        x, y, bw, bh = r["bbox"]
        norm.append(dict(r, bbox=[x / w, y / h, bw / w, bh / h]))
    refused(ctx.evaluate(ctx.gt_path, norm), "boxes look normalised")


def case_box_on_wrong_image_size(ctx: Ctx):
    """Boxes in resized-image coordinates (x2), far outside their image."""
    preds = make_predictions(ctx.gt)
    big = [dict(r, bbox=[v * 2 for v in r["bbox"]]) for r in preds]
    refused(ctx.evaluate(ctx.gt_path, big), "boxes far outside their image")


def case_unknown_category_id_and_drop(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    bad = preds + [dict(preds[0], category_id=999)]
    refused(ctx.evaluate(ctx.gt_path, bad), "category ids [999] are not among")
    err = scored(ctx.evaluate(ctx.gt_path, bad, "--drop-unknown"), coco_ap(ctx.gt, preds))
    assert "dropped 1 predictions" in err


def case_unknown_image_id(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds[2]["image_id"] = 5
    refused(ctx.evaluate(ctx.gt_path, preds), "image ids [5] are not in the ground truth")


def case_boolean_image_id(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    preds = [dict(r, image_id=True) if k == 0 else r for k, r in enumerate(preds)]
    refused(ctx.evaluate(ctx.gt_path, preds), "pred.json[0] has image_id=true, a boolean")


def case_category_id_digit_string(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    strings = [dict(r, category_id=str(r["category_id"])) for r in preds]
    refused(
        ctx.evaluate(ctx.gt_path, strings),
        "category_id values are strings of digits",
        "remove the quotes",
    )


def case_some_results_without_category_name(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    named = [dict(r, category_name="person") if k else r for k, r in enumerate(preds)]
    refused(ctx.evaluate(ctx.gt_path, named), "pred.json[0] has no 'category_name'")


def case_mask_rle_of_wrong_size(ctx: Ctx):
    preds = make_predictions(ctx.gt, masks=True)
    preds[3]["segmentation"] = mask_util.encode(np.asfortranarray(np.ones((10, 10), np.uint8)))
    preds[3]["segmentation"]["counts"] = preds[3]["segmentation"]["counts"].decode()
    refused(
        ctx.evaluate(ctx.gt_path, preds, "--iou-types", "segm"),
        "pred.json[3] has size=[10, 10]",
        "RLE 'size'",
    )


def case_mask_as_polygons(ctx: Ctx):
    """Polygon masks in results (pycocotools needs RLE): converted with the image's size."""
    preds = make_predictions(ctx.gt, masks=True)
    anns = [a for a in ctx.gt["annotations"] if not a["iscrowd"]]
    poly = []
    for r in preds[:20]:
        a = next(
            a
            for a in anns
            if a["image_id"] == r["image_id"] and a["category_id"] == r["category_id"]
        )
        poly.append(dict(r, segmentation=a["segmentation"]))
    ref = coco_ap(
        ctx.gt, [dict(r, segmentation=polygon_rle(r, *_hw(ctx, r))) for r in poly], "segm"
    )
    scored(ctx.evaluate(ctx.gt_path, poly, "--iou-types", "segm"), ref, "segm")


def _hw(ctx: Ctx, r: dict) -> tuple[int, int]:
    im = next(im for im in ctx.gt["images"] if im["id"] == r["image_id"])
    return im["height"], im["width"]


def case_model_checkpoint_as_predictions(ctx: Ctx):
    path = ctx.tmp / "model_final.pth"
    torch.save({"model": {"w": torch.zeros(2)}}, path)
    refused(
        ctx.evaluate(ctx.gt_path, path), "model_final.pth is a model checkpoint, not predictions"
    )


def case_predictions_not_json(ctx: Ctx):
    path = ctx.write("pred.json", '[{"image_id": 1, "score": 0.5,}]')
    refused(ctx.evaluate(ctx.gt_path, path), "not valid json", "line 1", "trailing comma")


# ----------------------------------------------------------------------------- ground truth
def case_gt_duplicate_image_ids(ctx: Ctx):
    preds = make_predictions(ctx.gt)
    ctx.gt["images"][3]["id"] = ctx.gt["images"][0]["id"]
    refused(ctx.evaluate(ctx.gt, preds), "image.duplicate_id", "images[3]")


def case_gt_annotation_id_zero_and_duplicates(ctx: Ctx):
    """Repaired (renumbered): pycocotools alone scores perfect detections below 100 here."""
    ctx.gt["annotations"][0]["id"] = 0
    ctx.gt["annotations"][2]["id"] = ctx.gt["annotations"][1]["id"]
    preds = perfect(ctx.gt)
    assert coco_ap(ctx.gt, preds) < 99.0
    err = scored(ctx.evaluate(ctx.gt, preds), 100.0)
    assert "annotation ids renumbered" in err


def case_gt_without_area_and_iscrowd(ctx: Ctx):
    """Filled in (mask area, iscrowd 0): the AP of the original file."""
    preds = make_predictions(ctx.gt)
    ref = coco_ap(ctx.gt, preds)
    for a in ctx.gt["annotations"]:
        del a["area"], a["iscrowd"]
    crowd = [a for a in ctx.gt["annotations"] if isinstance(a["segmentation"], dict)]
    for a in crowd:
        a["iscrowd"] = 1
    err = scored(ctx.evaluate(ctx.gt, preds), ref)
    assert "areas computed" in err and "'iscrowd' taken as 0" in err


def case_gt_zero_size_box(ctx: Ctx):
    """Scored as pycocotools (and the official COCO evaluation) score it, with a warning."""
    preds = make_predictions(ctx.gt)
    ctx.gt["annotations"][4]["bbox"][2] = 0
    err = scored(ctx.evaluate(ctx.gt, preds), coco_ap(ctx.gt, preds))
    assert "1 boxes of zero size (e.g. annotations[4]" in err


def case_gt_string_ids(ctx: Ctx):
    for im in ctx.gt["images"]:
        im["id"] = str(im["id"])
    refused(ctx.evaluate(ctx.gt, []), "image.id_type", "the string '128372'")


def case_gt_trailing_comma(ctx: Ctx):
    text = json.dumps(ctx.gt, indent=1).replace(
        '"categories": [', '"categories": [\n{"id": 999, "name": "x"},', 1
    )
    text = text.replace('"name": "x"}', '"name": "x",}', 1)
    line = text[: text.index('"name": "x",}')].count("\n") + 1
    refused(ctx.evaluate(ctx.write("gt.json", text), []), f"at line {line}", "trailing comma")


def case_gt_box_far_outside(ctx: Ctx):
    ctx.gt["annotations"][7]["bbox"][0] = 5000.0
    refused(ctx.evaluate(ctx.gt, []), "bbox.outside_image", "annotations[7]")


def case_gt_missing_categories(ctx: Ctx):
    del ctx.gt["categories"]
    refused(ctx.evaluate(ctx.gt, []), "json.missing_categories", "no top-level 'categories'")


# ----------------------------------------------------------------------------- data check
def _image_files(ctx: Ctx, gt: dict, root: Path) -> None:
    for im in gt["images"]:
        path = root / im["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (im["width"], im["height"]), (90, 120, 150)).save(path)


def _check(ctx: Ctx, gt, *extra) -> tuple[int, dict]:
    """``ovdet data check --json``: (exit status, report)."""
    path = gt if isinstance(gt, Path) else ctx.write("dataset.json", gt)
    rc, out, err = ctx.run("data", "check", path, "--json", *extra)
    assert rc in (0, 1), err
    return rc, json.loads(out)


def _codes(report: dict, severity: str) -> set[str]:
    return {i["code"] for i in report[severity]}


def _issue(report: dict, code: str) -> dict:
    return next(i for i in report["errors"] + report["warnings"] if i["code"] == code)


def labelme2coco(num: int = 3) -> dict:
    """As labelme's labelme2coco.py writes it: _background_ id 0, ids from 0, polygons with
    area from the mask, iscrowd, None fields, file names under JPEGImages/."""
    images, anns = [], []
    for k in range(num):
        images.append(
            {
                "license": 0,
                "url": None,
                "file_name": f"JPEGImages/{k:04d}.jpg",
                "height": 120,
                "width": 160,
                "date_captured": None,
                "id": k,
            }
        )
        for j, (x, y) in enumerate(((10.0, 12.0), (80.0, 40.0))):
            poly = [x, y, x + 50, y, x + 50, y + 40, x + 10, y + 55]
            rle = mask_util.merge(mask_util.frPyObjects([poly], 120, 160))
            anns.append(
                {
                    "id": len(anns),
                    "image_id": k,
                    "category_id": 1 + j,
                    "segmentation": [poly],
                    "area": float(mask_util.area(rle)),
                    "bbox": [float(v) for v in mask_util.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
    return {
        "info": {
            "description": None,
            "url": None,
            "version": None,
            "year": 2024,
            "contributor": None,
            "date_created": "2024-01-01 00:00:00.000000",
        },
        "licenses": [{"url": None, "id": 0, "name": None}],
        "images": images,
        "type": "instances",
        "annotations": anns,
        "categories": [
            {"supercategory": None, "id": 0, "name": "_background_"},
            {"supercategory": None, "id": 1, "name": "person"},
            {"supercategory": None, "id": 2, "name": "bottle"},
        ],
    }


def cvat_export(num: int = 3) -> dict:
    """CVAT's COCO 1.0 export of rectangles: supercategory "", attributes, segmentation []."""
    images, anns = [], []
    for k in range(num):
        images.append(
            {
                "id": k + 1,
                "width": 200,
                "height": 150,
                "file_name": f"frame_{k:06d}.PNG",
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            }
        )
        for j in range(2):
            box = [10.5 + 60 * j, 20.25, 50.0, 40.5]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": k + 1,
                    "category_id": j + 1,
                    "segmentation": [],
                    "area": box[2] * box[3],
                    "bbox": box,
                    "iscrowd": 0,
                    "attributes": {"occluded": False, "rotation": 0.0},
                }
            )
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },
        "categories": [
            {"id": 1, "name": "car", "supercategory": ""},
            {"id": 2, "name": "person", "supercategory": ""},
        ],
        "images": images,
        "annotations": anns,
    }


def roboflow_export(num: int = 3) -> dict:
    """Roboflow's COCO export: category 0 a superclass no annotation uses, ids from 0,
    date_captured, license, extra fields."""
    gt = synthetic_gt(
        num_images=num,
        cats=((1, "Platelets"), (2, "RBC"), (3, "WBC")),
        size=416,
        first_image_id=0,
        first_ann_id=0,
    )
    for im in gt["images"]:
        im.update(
            license=1, date_captured="2020-11-18T16:09:34+00:00", extra={"name": im["file_name"]}
        )
        im["file_name"] = im["file_name"].replace(".jpg", "_jpg.rf.3f2a.jpg")
    for a in gt["annotations"]:
        a["segmentation"] = []
    gt["categories"] = [{"id": 0, "name": "cells", "supercategory": "none"}] + [
        dict(c, supercategory="cells") for c in gt["categories"]
    ]
    gt["info"] = {"year": "2020", "version": "1", "description": "Exported from roboflow.com"}
    gt["licenses"] = [
        {
            "id": 1,
            "url": "https://creativecommons.org/publicdomain/zero/1.0/",
            "name": "Public Domain",
        }
    ]
    return gt


def case_check_coco_sample(ctx: Ctx):
    rc, report = _check(ctx, ctx.gt_path, "--images", ctx.images, "--decode")
    assert rc == 0 and report["ok"] and report["errors"] == []
    assert _codes(report, "warnings") == {"category.unused", "image.no_annotations"}
    assert _issue(report, "category.unused")["count"] == 72
    assert _issue(report, "image.no_annotations")["examples"] == [
        "images[5] (id=89, file_name='000000000089.jpg')"
    ]


def case_check_labelme2coco(ctx: Ctx):
    gt = labelme2coco()
    _image_files(ctx, gt, ctx.tmp / "labelme")
    rc, report = _check(ctx, gt, "--images", ctx.tmp / "labelme", "--decode")
    assert rc == 0 and report["errors"] == []
    assert _codes(report, "warnings") == {"category.unused", "annotation.id_zero"}
    assert "_background_" in _issue(report, "category.unused")["examples"][0]


def case_check_labelme_flat_polygon(ctx: Ctx):
    gt = labelme2coco()
    gt["annotations"][3]["segmentation"] = gt["annotations"][3]["segmentation"][0]
    rc, report = _check(ctx, gt)
    assert rc == 1 and _codes(report, "errors") == {"segmentation.flat_polygon"}
    issue = _issue(report, "segmentation.flat_polygon")
    assert issue["count"] == 1 and issue["examples"][0].startswith("annotations[3] (id=3")
    assert "[[x1, y1, x2, y2, ...]]" in issue["message"]


def case_check_cvat_export(ctx: Ctx):
    gt = cvat_export()
    _image_files(ctx, gt, ctx.tmp / "cvat")
    rc, report = _check(ctx, gt, "--images", ctx.tmp / "cvat")
    assert rc == 0 and report["errors"] == [] and report["warnings"] == []


def case_check_roboflow_export_and_register(ctx: Ctx):
    gt = roboflow_export()
    _image_files(ctx, gt, ctx.tmp / "rf")
    rc, report = _check(ctx, gt, "--images", ctx.tmp / "rf")
    assert rc == 0 and report["errors"] == []
    assert _codes(report, "warnings") == {"category.unused", "annotation.id_zero"}
    assert _issue(report, "category.unused")["examples"] == [
        "categories[0] (id=0, name='cells'): a superclass or background entry (Roboflow, "
        "labelme2coco)? it stays a class of the vocabulary unless removed"
    ]
    name = "ovdet_test_bad_inputs_roboflow"
    register_ov_dataset(name, ctx.tmp / "dataset.json", ctx.tmp / "rf", replace=True)
    try:
        dicts = DatasetCatalog.get(name)
        assert len(dicts) == 3 and sum(len(d["annotations"]) for d in dicts) == 9
        assert MetadataCatalog.get(name).thing_classes == ["cells", "Platelets", "RBC", "WBC"]
        assert check_registered_dataset(name).ok
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def case_check_trailing_comma(ctx: Ctx):
    text = json.dumps(cvat_export(), indent=2)
    text = text.replace('"iscrowd": 0,', '"iscrowd": 0,,', 1)
    line = text[: text.index(",,")].count("\n") + 1
    rc, report = _check(ctx, ctx.write("dataset.json", text))
    assert rc == 1 and _codes(report, "errors") == {"json.invalid"}
    assert f"line {line}" in _issue(report, "json.invalid")["message"]


def case_check_string_ids(ctx: Ctx):
    gt = cvat_export()
    for a in gt["annotations"]:
        a["image_id"] = str(a["image_id"])
    gt["images"][0]["id"] = "1"
    rc, report = _check(ctx, gt)
    assert rc == 1
    assert {"image.id_type", "annotation.image_id_type"} <= _codes(report, "errors")
    assert "the string '1'" in _issue(report, "image.id_type")["examples"][0]


def case_check_missing_categories(ctx: Ctx):
    gt = cvat_export()
    del gt["categories"]
    rc, report = _check(ctx, gt)
    assert rc == 1
    assert _codes(report, "errors") == {"json.missing_categories", "annotation.unknown_category"}


def case_check_duplicate_ids(ctx: Ctx):
    gt = cvat_export()
    gt["images"][2]["id"] = 1
    gt["annotations"][3]["id"] = 1
    gt["categories"].append({"id": 2, "name": "bus"})
    rc, report = _check(ctx, gt)
    assert rc == 1
    assert {"image.duplicate_id", "annotation.duplicate_id", "category.duplicate_id"} <= _codes(
        report, "errors"
    )
    assert _issue(report, "annotation.duplicate_id")["examples"] == [
        "annotations[3] (id=1, image_id=2) repeats id 1 of annotations[0]"
    ]


def case_check_dangling_references(ctx: Ctx):
    gt = cvat_export()
    gt["annotations"][1]["image_id"] = 77
    gt["annotations"][2]["category_id"] = 9
    rc, report = _check(ctx, gt)
    assert rc == 1
    assert _codes(report, "errors") == {"annotation.unknown_image", "annotation.unknown_category"}
    assert _issue(report, "annotation.unknown_image")["examples"] == [
        "annotations[1] (id=2, image_id=77): image_id=77"
    ]


def case_check_box_geometry(ctx: Ctx):
    gt = cvat_export(num=4)
    gt["annotations"][0]["bbox"][2] = -5.0
    gt["annotations"][1]["bbox"][3] = 0
    gt["annotations"][2]["bbox"][0] = float("nan")
    gt["annotations"][3]["bbox"][0] = 900.0  # far outside a 200x150 image
    gt["annotations"][4]["bbox"][0] = 152.0  # 2 px past the right edge
    rc, report = _check(ctx, gt)
    assert rc == 1
    assert _codes(report, "errors") == {
        "bbox.negative_size",
        "bbox.not_finite",
        "bbox.outside_image",
    }
    assert _codes(report, "warnings") == {"bbox.outside_slightly", "bbox.zero_size"}
    assert _issue(report, "bbox.outside_image")["examples"][0].startswith("annotations[3] (id=4")


def case_check_xyxy_boxes(ctx: Ctx):
    gt = cvat_export(num=4)
    for a in gt["annotations"][1::2]:
        a["bbox"][0] = 140.0  # as corners [140, 20.25, 190, 60.75]: past the right edge as XYWH
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        a["bbox"] = [x, y, x + w, y + h]
    rc, report = _check(ctx, gt)
    assert rc == 1 and _codes(report, "errors") == {"bbox.looks_xyxy"}
    assert "[x1, y1, x2 - x1, y2 - y1]" in _issue(report, "bbox.looks_xyxy")["message"]


def case_check_areas(ctx: Ctx):
    gt = labelme2coco()
    del gt["annotations"][0]["area"]
    gt["annotations"][1]["area"] = 0
    gt["annotations"][2]["area"] = 1e6
    gt["annotations"][3]["area"] = 10.0
    gt["annotations"][4]["area"] = "big"
    rc, report = _check(ctx, gt)
    assert rc == 1 and _codes(report, "errors") == {"area.type"}
    assert {"area.missing", "area.zero", "area.larger_than_box", "area.mismatch"} <= _codes(
        report, "warnings"
    )
    assert _issue(report, "area.mismatch")["examples"][0].startswith("annotations[3] (id=3")


def case_check_short_polygon_and_rle_size(ctx: Ctx):
    gt = labelme2coco()
    gt["annotations"][1]["segmentation"] = [[1.0, 2.0, 3.0, 4.0]]
    rle = mask_util.encode(np.asfortranarray(np.ones((60, 80), np.uint8)))
    gt["annotations"][2]["segmentation"] = {"size": [60, 80], "counts": rle["counts"].decode()}
    gt["annotations"][2]["iscrowd"] = 1
    gt["annotations"][4]["iscrowd"] = 2
    gt["annotations"][5]["segmentation"].append([5.0, 5.0, 9.0, 9.0])  # beside a valid one
    rc, report = _check(ctx, gt)
    assert rc == 1
    assert _codes(report, "errors") == {
        "segmentation.polygon_short",
        "segmentation.rle_size",
        "iscrowd.value",
    }
    assert _codes(report, "warnings") == {
        "segmentation.polygon_short_part",
        "category.unused",
        "annotation.id_zero",
    }
    assert (
        "size=[60, 80], image is [120, 160]"
        in _issue(report, "segmentation.rle_size")["examples"][0]
    )


def case_check_missing_and_corrupt_images(ctx: Ctx):
    """Fast mode: existence only; decode mode: corrupt files and wrong sizes too."""
    gt = cvat_export(num=4)
    root = ctx.tmp / "imgs"
    _image_files(ctx, gt, root)
    (root / "frame_000001.PNG").unlink()
    (root / "frame_000002.PNG").write_bytes(b"not an image")
    Image.new("RGB", (150, 200)).save(root / "frame_000003.PNG")  # rotated size
    rc, report = _check(ctx, gt, "--images", root)
    assert rc == 1 and _codes(report, "errors") == {"image.missing_file"}
    assert _issue(report, "image.missing_file")["examples"] == [
        "images[1] (id=2): 'frame_000001.PNG'"
    ]
    rc, report = _check(ctx, gt, "--images", root, "--decode")
    assert _codes(report, "errors") == {
        "image.missing_file",
        "image.unreadable",
        "image.size_mismatch",
    }
    assert (
        "file is 150x200 (WxH), json says 200x150"
        in _issue(report, "image.size_mismatch")["examples"][0]
    )


def case_check_images_without_annotations_is_a_warning(ctx: Ctx):
    gt = cvat_export()
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] != 2]
    rc, report = _check(ctx, gt)
    assert rc == 0 and _codes(report, "warnings") == {"image.no_annotations"}


def case_check_human_output(ctx: Ctx):
    gt = cvat_export()
    gt["annotations"][0]["bbox"][2] = -1
    rc, out, _ = ctx.run("data", "check", ctx.write("d.json", gt))
    assert rc == 1
    assert "[bbox.negative_size] 1x negative box width or height" in out
    assert "annotations[0] (id=1, image_id=1): bbox=[10.5, 20.25, -1, 40.5]" in out
    assert out.rstrip().endswith("FAILED: 1 kinds of error; fix them before training.")


def case_check_missing_file(ctx: Ctx):
    rc, _, err = ctx.run("data", "check", ctx.tmp / "nope.json")
    assert rc == 2 and "COCO-format json not found" in err and "nope.json" in err


def case_registered_dataset_check_and_raise(ctx: Ctx):
    gt = cvat_export()
    gt["annotations"][1]["bbox"] = [0, 0, -3, 4]
    path = ctx.write("reg.json", gt)
    name = "ovdet_test_bad_inputs_reg"
    register_ov_dataset(name, path, ctx.tmp / "none", replace=True)
    try:
        report = check_registered_dataset(name, images="none")
        assert not report.ok and report.codes("error") == {"bbox.negative_size"}
        with pytest.raises(COCOFormatError, match=r"bbox\.negative_size.*annotations\[1\]"):
            report.raise_if_errors()
        with pytest.raises(
            COCOFormatError, match=r"annotation 1 of image id 1 .*bbox=\[0, 0, -3, 4\]"
        ):
            DatasetCatalog.get(name)  # loading refuses it too
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def case_registered_flat_polygon_load_error(ctx: Ctx):
    gt = labelme2coco()
    gt["annotations"][2]["segmentation"] = gt["annotations"][2]["segmentation"][0]
    name = "ovdet_test_bad_inputs_flat"
    register_ov_dataset(name, ctx.write("flat.json", gt), ctx.tmp, replace=True)
    try:
        with pytest.raises(COCOFormatError, match=r"segmentation\.flat_polygon.*annotations\[2\]"):
            DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def case_check_is_fast(ctx: Ctx):
    """20,000 images, 100,000 annotations, existence of every file: seconds."""
    root = ctx.tmp / "many"
    root.mkdir()
    images, anns = [], []
    for k in range(20000):
        images.append({"id": k + 1, "file_name": f"{k:06d}.jpg", "height": 480, "width": 640})
        (root / f"{k:06d}.jpg").touch()
    for k in range(100000):
        anns.append(
            {
                "id": k + 1,
                "image_id": k % 20000 + 1,
                "category_id": k % 5 + 1,
                "bbox": [10.0, 20.0, 30.0, 40.0],
                "area": 1200.0,
                "iscrowd": 0,
            }
        )
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(5)]
    path = ctx.write("big.json", {"images": images, "annotations": anns, "categories": cats})
    start = time.perf_counter()
    report = check_coco_dataset(path, root)
    seconds = time.perf_counter() - start
    assert report.ok and report.issues == [] and report.stats["images"] == 20000
    assert seconds < 20, f"check took {seconds:.1f}s"


CASES: dict[str, Callable[[Ctx], None]] = {
    name[len("case_") :]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input(kind, tmp_path, capsys, test_data):
    root = test_data / "coco_sample"
    gt_path = root / "annotations.json"
    ctx = Ctx(tmp_path, json.loads(gt_path.read_text()), gt_path, root / "images", capsys)
    CASES[kind](ctx)


def test_case_count():
    assert len(CASES) >= 30


def test_library_api_same_as_cli(test_data):
    """The library gives the CLI's AP and raises the CLI's error types."""
    gt_path = test_data / "coco_sample" / "annotations.json"
    gt = json.loads(gt_path.read_text())
    preds = make_predictions(gt)
    assert evaluate_coco_results(gt_path, preds)["bbox"]["AP"] == pytest.approx(coco_ap(gt, preds))
    with pytest.raises(ValueError, match=r"results\[0\] has no 'score'"):
        evaluate_coco_results(gt_path, [{k: v for k, v in preds[0].items() if k != "score"}])
