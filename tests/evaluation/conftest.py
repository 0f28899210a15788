"""Fixtures for tests/evaluation: the COCO sample and detections made from it."""

from __future__ import annotations

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest


@pytest.fixture(scope="session")
def sample_gt(test_data):
    return test_data / "coco_sample" / "annotations.json"


@pytest.fixture(scope="session")
def gt_dict(sample_gt) -> dict:
    return json.loads(sample_gt.read_text())


def polygon_rle(ann: dict, height: int, width: int) -> dict:
    rle = mask_util.merge(mask_util.frPyObjects(ann["segmentation"], height, width))
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


@pytest.fixture
def perfect_results(gt_dict) -> list[dict]:
    """Every non-crowd GT annotation as a detection (score 1, box and polygon mask)."""
    imgs = {i["id"]: i for i in gt_dict["images"]}
    out = []
    for a in gt_dict["annotations"]:
        if a["iscrowd"]:
            continue
        im = imgs[a["image_id"]]
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": list(a["bbox"]),
                "score": 1.0,
                "segmentation": polygon_rle(a, im["height"], im["width"]),
            }
        )
    return out


@pytest.fixture
def noisy_results(gt_dict) -> list[dict]:
    """Seeded jittered boxes, random scores and false positives (box-shaped masks)."""
    rng = np.random.default_rng(0)
    imgs = {i["id"]: i for i in gt_dict["images"]}
    cats = sorted({a["category_id"] for a in gt_dict["annotations"]})
    out = []

    def add(image_id, cat, box, score):
        im = imgs[image_id]
        x, y, w, h = box
        x, y = float(max(0.0, x)), float(max(0.0, y))
        w, h = float(max(1.0, min(w, im["width"] - x))), float(max(1.0, min(h, im["height"] - y)))
        box = np.array([[x, y, w, h]], dtype=np.float64)
        rle = mask_util.frPyObjects(box, im["height"], im["width"])[0]
        rle["counts"] = rle["counts"].decode("utf-8")
        out.append(
            {
                "image_id": image_id,
                "category_id": cat,
                "bbox": [x, y, w, h],
                "score": float(score),
                "segmentation": rle,
            }
        )

    for a in gt_dict["annotations"]:
        if a["iscrowd"] or rng.random() < 0.15:
            continue  # some misses
        x, y, w, h = a["bbox"]
        jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
        add(
            a["image_id"],
            a["category_id"],
            [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]],
            rng.random(),
        )
    for _ in range(12):  # false positives, the empty image included
        im = imgs[int(rng.choice(sorted(imgs)))]
        w, h = rng.uniform(10, 200, 2)
        add(
            im["id"],
            int(rng.choice(cats)),
            [rng.uniform(0, im["width"] - w), rng.uniform(0, im["height"] - h), w, h],
            rng.random(),
        )
    return out
