"""Gold + pseudo boxes -> one training set (the merge rule of self-training).

The rule, per training image (``docs/self_training.md#the-merge-rule``):

1. Every gold annotation is kept as it is (crowd ones too).
2. Pseudo boxes are candidates when their class is one of ``pseudo_classes`` (default: the
   classes without gold boxes, i.e. the novel ones; a base class is exhaustively annotated,
   so a base-class pseudo box on an unannotated object is wrong by construction) and their
   score is at least ``low``.
3. **Gold wins**: a candidate overlapping a gold box with IoU >= ``gold_iou`` is dropped. Of
   the same class it is the same object, already labelled; of another class the gold label
   contradicts it.
4. The candidates left go through class-agnostic NMS (``nms_iou``, higher score first): one
   object, one pseudo label.
5. A candidate scoring >= ``high`` becomes a training box (``iscrowd: 0``); one in the
   uncertain band [``low``, ``high``) becomes an **ignore region** (``iscrowd: 1``): the
   detector is trained neither to find it nor to call it background
   (:class:`~ovdet.data.mapper.OVDatasetMapper` ``crowd_as_ignore``).

Pseudo annotations keep the teacher's ``score`` (and ``segmentation`` / ``mask_score``) and
get ``"pseudo": 1``. Categories are the pseudo json's (the teacher's vocabulary, ids
1..C); gold categories are mapped onto them by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ovdet.utils.errors import InputError

__all__ = ["MergeSettings", "check_merge_settings", "merge_pseudo_labels"]


@dataclass(frozen=True)
class MergeSettings:
    """The merge rule's numbers (see the module docstring)."""

    high: float = 0.3
    low: float = 0.1
    gold_iou: float = 0.5
    nms_iou: float = 0.5

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def check_merge_settings(settings: MergeSettings) -> MergeSettings:
    """Refuse thresholds outside [0, 1] or ``low > high``, naming the option."""
    for name in ("high", "low", "gold_iou", "nms_iou"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(
                f"--{name.replace('_', '-')} must be a number in [0, 1], got {value!r}"
            )
    if settings.low > settings.high:
        raise InputError(
            f"--low ({settings.low}) is above --high ({settings.high}): the uncertain band "
            "[low, high) marks ignore regions; pass low <= high (low == high: no ignore regions)"
        )
    return settings


def _xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:]], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of XYXY boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _category_map(gold: dict, names: list[str], where: str) -> dict[int, int]:
    ids = {name: i + 1 for i, name in enumerate(names)}
    out = {}
    for cat in gold.get("categories", []):
        if cat["name"] not in ids:
            raise InputError(
                f"{where}: gold class {cat['name']!r} is not in the teacher's vocabulary "
                f"({len(names)} classes); the teacher must score every class of the training set"
            )
        out[cat["id"]] = ids[cat["name"]]
    return out


def merge_pseudo_labels(
    gold: dict[str, Any],
    pseudo: dict[str, Any],
    settings: MergeSettings,
    *,
    pseudo_classes: Sequence[str] | None = None,
    where: str = "merge",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge a gold COCO dataset and a pseudo-label COCO json of the same images.

    Args:
        gold: the gold training set (COCO dict).
        pseudo: ``ovdet pseudo-label``'s ``pseudo_labels.json`` of the gold set's images.
        settings: thresholds (:class:`MergeSettings`).
        pseudo_classes: names whose pseudo boxes may be added; None: the vocabulary's classes
            that have no gold box in ``gold``.
        where: a name for messages.

    Returns:
        (merged COCO dict: gold's ``images``, the pseudo json's ``categories``, annotations
        re-numbered 1..N by image; statistics: ``{"images", "gold", "pseudo_boxes",
        "ignore_regions", "dropped": {"class", "low_score", "gold_overlap", "nms"},
        "pseudo_per_class": {name: n}, "ignore_per_class": {name: n}}``).

    Raises:
        InputError: a gold class missing from the vocabulary, pseudo boxes of images that
            the gold set does not have, an unknown name in ``pseudo_classes``.
    """
    check_merge_settings(settings)
    categories = sorted(pseudo.get("categories", []), key=lambda c: c["id"])
    names = [c["name"] for c in categories]
    if [c["id"] for c in categories] != list(range(1, len(names) + 1)):
        raise InputError(f"{where}: pseudo-label categories must have ids 1..C in order")
    gold_map = _category_map(gold, names, where)
    if pseudo_classes is None:
        with_gold = {gold_map[a["category_id"]] for a in gold.get("annotations", [])}
        allowed = {i for i in range(1, len(names) + 1) if i not in with_gold}
    else:
        unknown = [n for n in pseudo_classes if n not in names]
        if unknown:
            raise InputError(f"{where}: pseudo classes {unknown} are not in the vocabulary")
        allowed = {names.index(n) + 1 for n in pseudo_classes}

    image_ids = [img["id"] for img in gold["images"]]
    known = set(image_ids)
    gold_by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in gold.get("annotations", []):
        gold_by_image[ann["image_id"]].append(ann)
    pseudo_by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in pseudo.get("annotations", []):
        if ann["image_id"] not in known:
            raise InputError(
                f"{where}: pseudo box {ann.get('id')} is of image {ann['image_id']}, which the "
                "gold training set does not have; label the gold set's images (--coco-json)"
            )
        pseudo_by_image[ann["image_id"]].append(ann)

    dropped = {"class": 0, "low_score": 0, "gold_overlap": 0, "nms": 0}
    per_class: dict[str, int] = defaultdict(int)
    ignore_per_class: dict[str, int] = defaultdict(int)
    annotations: list[dict[str, Any]] = []
    n_gold = n_pseudo = n_ignore = 0
    for image_id in image_ids:
        golds = gold_by_image.get(image_id, [])
        for ann in golds:
            annotations.append({**ann, "category_id": gold_map[ann["category_id"]]})
        n_gold += len(golds)
        cands = []
        for ann in pseudo_by_image.get(image_id, []):
            if ann["category_id"] not in allowed:
                dropped["class"] += 1
            elif float(ann["score"]) < settings.low:
                dropped["low_score"] += 1
            else:
                cands.append(ann)
        if not cands:
            continue
        boxes = _xyxy([a["bbox"] for a in cands])
        solid = [a for a in golds if not a.get("iscrowd", 0)]
        if solid:
            overlap = _iou(boxes, _xyxy([a["bbox"] for a in solid])).max(axis=1)
            keep = overlap < settings.gold_iou
            dropped["gold_overlap"] += int((~keep).sum())
            cands = [a for a, k in zip(cands, keep) if k]
            boxes = boxes[keep]
        order = sorted(range(len(cands)), key=lambda i: -float(cands[i]["score"]))
        kept: list[int] = []
        for i in order:
            if kept and _iou(boxes[i : i + 1], boxes[kept]).max() >= settings.nms_iou:
                dropped["nms"] += 1
                continue
            kept.append(i)
        for i in kept:
            ann = cands[i]
            ignore = float(ann["score"]) < settings.high
            name = names[ann["category_id"] - 1]
            if ignore:
                n_ignore += 1
                ignore_per_class[name] += 1
            else:
                n_pseudo += 1
                per_class[name] += 1
            annotations.append({**ann, "iscrowd": int(ignore), "pseudo": 1})
    for k, ann in enumerate(annotations, start=1):
        ann["id"] = k
    merged = {
        "info": {"description": f"gold + pseudo boxes ({where})"},
        "images": gold["images"],
        "categories": categories,
        "annotations": annotations,
    }
    stats = {
        "images": len(image_ids),
        "gold": n_gold,
        "pseudo_boxes": n_pseudo,
        "ignore_regions": n_ignore,
        "dropped": dropped,
        "pseudo_classes": [names[i - 1] for i in sorted(allowed)],
        "pseudo_per_class": dict(sorted(per_class.items())),
        "ignore_per_class": dict(sorted(ignore_per_class.items())),
    }
    return merged, stats
