"""The statistical check of a join by ids against the ground-truth boxes (the rule is in the
docstring of :mod:`ovdet.evaluation.predictions`)."""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pycocotools.mask as mask_util

from ovdet.evaluation.predictions.ground_truth import GTIndex
from ovdet.evaluation.predictions.load import PredictionFormatError
from ovdet.evaluation.predictions.report import JoinReport

# thresholds of the join check (see the package docstring)
MATCH_IOU = 0.5
IMAGE_FIT_MIN = 0.5
IMAGE_LIFT_MIN = 0.1
CATEGORY_AGREEMENT_MIN = 0.5
CATEGORY_KAPPA_MIN = 0.2
MIN_TEST_DETECTIONS = 10


def _top_detections(joined: list[dict], gt_boxes: dict) -> dict[Any, list[dict]]:
    """Per GT image with objects: its top-scoring detections with a box, as many as objects."""
    per_image: dict[Any, list[dict]] = defaultdict(list)
    for r in joined:
        if r["image_id"] in gt_boxes and "bbox" in r:
            per_image[r["image_id"]].append(r)
    out = {}
    for iid, dets in per_image.items():
        dets.sort(key=lambda d: -float(d["score"]))
        out[iid] = dets[: len(gt_boxes[iid][0])]
    return out


def _overlaps(dets: list[dict], boxes: np.ndarray) -> np.ndarray:
    """(detections, GT boxes) IoU matrix."""
    if not dets or not len(boxes):
        return np.zeros((len(dets), len(boxes)))
    d = np.asarray([r["bbox"] for r in dets], dtype=np.float64)
    return np.asarray(mask_util.iou(d, boxes, [0] * len(boxes))).reshape(len(dets), len(boxes))


def _fit(dets: list[dict], boxes: np.ndarray) -> int:
    """How many detections overlap some GT box with IoU >= MATCH_IOU."""
    ious = _overlaps(dets, boxes)
    return int((ious >= MATCH_IOU).any(axis=1).sum()) if ious.size else 0


def verify_id_join(joined, gt: Mapping, index: GTIndex, report: JoinReport, source: str) -> str:
    """Refuse a join by ids that the ground-truth boxes contradict (see the package docstring);
    returns what was verified."""
    gt_boxes: dict[Any, tuple[np.ndarray, list]] = {}
    acc: dict[Any, tuple[list, list]] = defaultdict(lambda: ([], []))
    for a in gt["annotations"]:
        if a.get("iscrowd", 0):
            continue
        acc[a["image_id"]][0].append([float(v) for v in a["bbox"]])
        acc[a["image_id"]][1].append(a["category_id"])
    for iid, (boxes, cats) in acc.items():
        gt_boxes[iid] = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4), cats)
    top = _top_detections(joined, gt_boxes)
    images = sorted(top)
    n_dets = sum(len(v) for v in top.values())
    check_images = report.images_by == "id"
    check_cats = report.categories_by != "name"
    done, unverified = [], []

    # per overlapping detection: (its category, the best-overlapping object's category, the
    # categories of all objects it overlaps: identical boxes of several classes all count)
    fits, pairs = 0, []
    for iid in images:
        ious = _overlaps(top[iid], gt_boxes[iid][0])
        cats = gt_boxes[iid][1]
        for det, row in zip(top[iid], ious):
            if row.size and row.max() >= MATCH_IOU:
                fits += 1
                near = {cats[k] for k in np.flatnonzero(row >= MATCH_IOU)}
                pairs.append((det["category_id"], cats[int(row.argmax())], near))
    fit = fits / n_dets if n_dets else 0.0

    if check_images:
        if len(images) < 2 or n_dets < MIN_TEST_DETECTIONS:
            unverified.append(
                f"image ids ({len(images)} images with objects and detections, {n_dets} top "
                "detections: too few to test)"
            )
        else:
            shifted = []
            for s in range(1, min(3, len(images) - 1) + 1):
                hits = total = 0
                for j, iid in enumerate(images):
                    other = images[(j + s) % len(images)]
                    dets = top[iid][: len(gt_boxes[other][0])]
                    hits += _fit(dets, gt_boxes[other][0])
                    total += len(dets)
                shifted.append(hits / total if total else 0.0)
            base = float(np.mean(shifted))
            if fit < IMAGE_FIT_MIN and fit - base < IMAGE_LIFT_MIN:
                raise PredictionFormatError(
                    f"{source}: the image ids do not look like the ground truth's: only "
                    f"{fit:.0%} of the top detections overlap an object of their image (IoU >= "
                    f"{MATCH_IOU}), and {base:.0%} overlap one when put on other images. The "
                    "predictions were probably numbered differently (e.g. `ovdet detect` "
                    "numbers images 1..N in input order): write file_name in the results (or "
                    "evaluate detect's detections.json) so that images are matched by name. If "
                    "the ids are right and the detector is this weak, pass trust_ids "
                    "(ovdet evaluate --trust-ids)"
                )
            done.append(
                f"image ids ({fit:.0%} of top detections fit their image, {base:.0%} another)"
            )
    if check_cats:
        gt_cats = {g for _, g, _ in pairs}
        if len(pairs) < MIN_TEST_DETECTIONS or len(gt_cats) < 2:
            unverified.append(
                f"category ids ({len(pairs)} top detections overlap an object, over "
                f"{len(gt_cats)} categories: too few to test)"
            )
        else:
            # agreement: the detection's category is one of the overlapped objects'; chance:
            # the same for a category drawn from the detections' category distribution
            agree = sum(pd in near for pd, _, near in pairs) / len(pairs)
            pred_freq = Counter(pd for pd, _, _ in pairs)
            chance = sum(sum(pred_freq[c] for c in near) for _, _, near in pairs) / len(pairs) ** 2
            kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
            if agree < CATEGORY_AGREEMENT_MIN and kappa < CATEGORY_KAPPA_MIN:
                confusions = Counter((pd, g) for pd, g, _ in pairs).most_common(3)
                shown = "; ".join(
                    f"category_id {pd} on {index.cat_names.get(g)!r} (id {g}) {n}x"
                    for (pd, g), n in confusions
                )
                zero = (
                    " Category ids that start at 0 (YOLO) are one below the ground truth's?"
                    if any(pd == g - 1 for (pd, g), _ in confusions)
                    else ""
                )
                raise PredictionFormatError(
                    f"{source}: the category ids do not look like the ground truth's: of "
                    f"{len(pairs)} top detections that overlap an object, {agree:.0%} carry its "
                    f"category (chance: {chance:.0%}); most frequent: {shown}.{zero} The "
                    "predictions probably number classes in another order (e.g. `ovdet "
                    "detect` numbers them in vocabulary order): write category_name in the "
                    "results (or evaluate detect's detections.json) so that categories are "
                    "matched by name. If the ids are right and the detector is this weak, pass "
                    "trust_ids (ovdet evaluate --trust-ids)"
                )
            done.append(
                f"category ids ({agree:.0%} of overlapping top detections carry the object's "
                f"category, chance {chance:.0%})"
            )
    if unverified:
        warnings.warn(
            f"{source}: could not verify the join by ids against the ground truth: "
            + "; ".join(unverified)
            + ". If the predictions were not made with this ground truth's ids, the AP is "
            "wrong: give category_name / file_name in the predictions to join them by name",
            UserWarning,
            stacklevel=3,
        )
    parts = []
    if done:
        parts.append("verified " + " and ".join(done))
    if unverified:
        parts.append("NOT verified: " + "; ".join(unverified))
    return "; ".join(parts)
