"""How good are pseudo-labels: precision and recall against ground truth, per score threshold.

    from ovdet.pseudo_label.quality import label_quality
    table = label_quality("pl/pseudo_labels.json", "train_all.json", thresholds=[0.3, 0.5])

A pseudo-box is a true positive when it overlaps an unmatched ground-truth box **of the same
class** (matched by category name) with IoU >= ``iou``; boxes are matched greedily in
descending score within each image and class (as COCO's matching does at one IoU threshold).
Recall counts the ground-truth objects matched; precision the pseudo-boxes that matched. Both
are reported for all classes and separately for ``base`` and ``novel`` ones (a pseudo-box
counts towards the group of its class). Images are joined by ``file_name`` (the path's last
component), so a pseudo-label json written with other image ids still joins. Crowd
ground-truth boxes are left out.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ovdet.utils.errors import InputError

__all__ = ["label_quality"]


def _load(path: str | os.PathLike, what: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} not found")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {p} is not valid JSON ({exc})") from exc
    for key in ("images", "categories", "annotations"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{what} {p} has no '{key}' list: a COCO json is needed")
    return data


def _boxes_by_image_and_class(data: dict[str, Any], crowd: bool) -> dict[tuple, list]:
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {img["id"]: Path(img["file_name"]).name for img in data["images"]}
    out: dict[tuple, list] = defaultdict(list)
    for ann in data["annotations"]:
        if not crowd and ann.get("iscrowd", 0):
            continue
        x, y, w, h = ann["bbox"]
        key = (files[ann["image_id"]], names[ann["category_id"]])
        out[key].append((float(ann.get("score", 1.0)), [x, y, x + w, y + h]))
    return out


def _iou(box: list[float], others: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def _match(preds: list, gts: list, iou: float) -> list[bool]:
    """For each prediction (descending score), whether it matched a free GT box."""
    order = sorted(range(len(preds)), key=lambda k: -preds[k][0])
    gt = np.array([b for _, b in gts], dtype=np.float64).reshape(-1, 4)
    free = np.ones(len(gt), dtype=bool)
    hits = [False] * len(preds)
    for k in order:
        if not free.any():
            break
        overlaps = np.where(free, _iou(preds[k][1], gt), -1.0)
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou:
            free[best] = False
            hits[k] = True
    return hits


def label_quality(
    pseudo_labels: str | os.PathLike,
    ground_truth: str | os.PathLike,
    *,
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    novel: Sequence[str] | None = None,
    iou: float = 0.5,
) -> dict[str, Any]:
    """Precision and recall of pseudo-labels per score threshold, all / base / novel.

    Args:
        pseudo_labels: ``ovdet pseudo-label``'s ``pseudo_labels.json`` (or any COCO json whose
            annotations have a ``score``).
        ground_truth: a COCO json of the same images with every object (e.g. OV-Shapes'
            ``train_all.json``).
        thresholds: score thresholds; boxes scoring below one are dropped for that row.
        novel: the novel class names (default: the pseudo-label json's categories marked
            ``"novel": true``).
        iou: IoU for a match.

    Returns:
        ``{"iou", "images", "novel", "rows": [{"threshold", "all" | "base" | "novel":
        {"boxes", "objects", "true_positives", "precision", "recall"}}]}`` (precision None
        with no box, recall None with no object).
    """
    if not 0.0 < iou <= 1.0:
        raise InputError(f"iou must be in (0, 1], got {iou}")
    pl = _load(pseudo_labels, "pseudo-labels")
    gt = _load(ground_truth, "ground truth")
    if novel is None:
        novel = [c["name"] for c in pl["categories"] if c.get("novel")]
    novel_set = set(novel)
    images = {Path(img["file_name"]).name for img in pl["images"]}
    gt_images = {Path(img["file_name"]).name for img in gt["images"]}
    missing = sorted(images - gt_images)
    if missing:
        raise InputError(
            f"{len(missing)} pseudo-labelled images are not in the ground truth {ground_truth} "
            f"(by file name), e.g. {missing[:3]}"
        )
    preds = _boxes_by_image_and_class(pl, crowd=True)
    truth = {k: v for k, v in _boxes_by_image_and_class(gt, crowd=False).items() if k[0] in images}
    rows = []
    for thresh in sorted(float(t) for t in thresholds):
        counts = {g: {"boxes": 0, "objects": 0, "true_positives": 0} for g in ("base", "novel")}
        for key in set(preds) | set(truth):
            group = "novel" if key[1] in novel_set else "base"
            kept = [p for p in preds.get(key, []) if p[0] >= thresh]
            objects = truth.get(key, [])
            counts[group]["boxes"] += len(kept)
            counts[group]["objects"] += len(objects)
            counts[group]["true_positives"] += sum(_match(kept, objects, iou)) if objects else 0
        counts["all"] = {k: counts["base"][k] + counts["novel"][k] for k in counts["base"]}
        row: dict[str, Any] = {"threshold": thresh}
        for group in ("all", "base", "novel"):
            c = counts[group]
            row[group] = dict(
                c,
                precision=c["true_positives"] / c["boxes"] if c["boxes"] else None,
                recall=c["true_positives"] / c["objects"] if c["objects"] else None,
            )
        rows.append(row)
    return {"iou": iou, "images": len(images), "novel": sorted(novel_set), "rows": rows}
