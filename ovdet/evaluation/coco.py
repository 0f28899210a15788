"""COCO-style open-vocabulary evaluation: AP over all, base and novel classes.

The generalised setting of OV-COCO (docs/methods.md#open-vocabulary-detection-protocol):
detections are made over the full test vocabulary (base + novel) and evaluated once with
pycocotools' ``COCOeval``; AP over
base / novel classes averages the per-class precision of the same evaluation over those
classes only, which is exactly what ``COCOeval`` gives with ``params.catIds`` restricted to
them. pycocotools is used directly (not detectron2's compiled fast COCOeval).

All numbers are percentages (0-100). A metric with no ground truth to measure (e.g. APs when
no small object exists, or AP_novel without novel objects) is ``nan``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet.data.check import CheckReport, check_coco_dict
from ovdet.data.datasets import COCOFormatError, json_error_message
from ovdet.evaluation.collect import IOU_TYPES, ResultsCollector
from ovdet.evaluation.predictions import JoinedPredictions, join_predictions, load_predictions
from ovdet.evaluation.results import instances_to_coco_results  # noqa: F401  (re-export)

__all__ = [
    "COCO_METRICS",
    "OVCOCOEvaluator",
    "evaluate_coco_results",
    "load_coco_gt",
    "load_results",
    "prepare_ground_truth",
]

logger = logging.getLogger(__name__)

COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
SPLIT_METRICS = ("AP_base", "AP50_base", "AP_novel", "AP50_novel")

GTLike = Union[str, os.PathLike, Mapping, COCO]
ResultsLike = Union[str, os.PathLike, Sequence[Mapping], Mapping, JoinedPredictions]


# Problems found by ovdet.data.check that evaluation repairs (with a warning) ...
_GT_REPAIRED = {
    "annotation.missing_id": "annotation ids renumbered 1..N (some had none)",
    "annotation.id_type": "annotation ids renumbered 1..N (some were not integers)",
    "annotation.duplicate_id": "annotation ids renumbered 1..N (some were duplicates: "
    "pycocotools would evaluate one annotation twice and the other never)",
    "annotation.id_zero": "annotation ids renumbered 1..N (pycocotools never counts a match to "
    "an annotation with id 0)",
    "area.missing": "missing annotation areas computed from the mask (or the box)",
    "iscrowd.missing": "missing 'iscrowd' taken as 0",
}
# ... or does not need (file names serve only to join predictions by name)
_GT_NOT_NEEDED = {
    "image.missing_file_name",
    "image.file_name",
    "annotations.empty",
    "category.name",
}


def prepare_ground_truth(data: Mapping, source: str, iou_types: Sequence[str] = ("bbox",)) -> dict:
    """Validate a ground-truth dict for evaluation and repair what can be repaired exactly.

    The checks are :func:`ovdet.data.check.check_coco_dict`'s. Repaired with a warning:
    annotation ids that are missing, duplicated, not integers or 0 (renumbered 1..N: ids
    carry no meaning in evaluation, but pycocotools mis-scores such files), missing ``area``
    (the mask's area, else the box's), missing ``iscrowd`` (0). Not needed: image file
    names. Everything else the check calls an error is refused; segmentation problems only
    with ``segm`` in ``iou_types``, which also needs a mask on every annotation and the
    images' ``height``/``width``.

    Returns:
        ``data`` itself when nothing was repaired, else a repaired shallow copy.

    Raises:
        COCOFormatError: naming the file, the problems and the first offending entries.
    """
    segm = "segm" in iou_types
    report = check_coco_dict(data, source)

    def refused(code: str) -> bool:
        if code in _GT_REPAIRED or code in _GT_NOT_NEEDED:
            return False
        if code.startswith("segmentation.") or code in ("image.missing_size", "image.size"):
            return segm  # image sizes serve masks (and checks of prediction boxes)
        return True

    errors = [i for i in report.errors if refused(i.code)]
    if errors:
        raise COCOFormatError("ground truth " + CheckReport(source, errors).summary())
    if segm:
        for i, ann in enumerate(data["annotations"]):
            if not ann.get("segmentation"):
                raise COCOFormatError(
                    f"{source}: annotations[{i}] (id={ann.get('id')}) has no segmentation: "
                    "segm evaluation needs a mask for every ground-truth object (evaluate "
                    "--iou-types bbox only)"
                )
    zero = report.get("bbox.zero_size")
    if zero is not None:
        warnings.warn(
            f"{source} (ground truth): {zero.count} boxes of zero size (e.g. {zero.examples[0]}): "
            "no detection can match them; they count as missed objects, as in pycocotools",
            UserWarning,
            stacklevel=3,
        )
    repairs = [code for code in _GT_REPAIRED if code in report.codes()]
    if not repairs:
        return data
    out = dict(data)
    images = {im["id"]: im for im in data["images"]}
    renumber = any(code.startswith("annotation.") for code in repairs)
    anns = []
    for k, ann in enumerate(data["annotations"]):
        ann = dict(ann)
        if renumber:
            ann["id"] = k + 1
        if "area" not in ann:
            ann["area"] = _annotation_area(ann, images.get(ann["image_id"]))
        if "iscrowd" not in ann:
            ann["iscrowd"] = 0
        anns.append(ann)
    out["annotations"] = anns
    for code in repairs:
        warnings.warn(f"{source} (ground truth): {_GT_REPAIRED[code]}", UserWarning, stacklevel=3)
    return out


def _annotation_area(ann: Mapping, image: Mapping | None) -> float:
    """Area of the mask (polygons or RLE) when the image size is known, else of the box."""
    segm = ann.get("segmentation")
    if segm and image is not None and "height" in image and "width" in image:
        h, w = int(image["height"]), int(image["width"])
        rles = mask_util.frPyObjects(segm, h, w) if isinstance(segm, list) else segm
        if isinstance(segm, Mapping) and isinstance(segm.get("counts"), list):
            rles = mask_util.frPyObjects(segm, h, w)
        rle = mask_util.merge(rles) if isinstance(rles, list) else rles
        return float(mask_util.area(rle))
    box = ann["bbox"]
    return float(box[2]) * float(box[3])


def load_coco_gt(
    gt_json: GTLike,
    *,
    need_segmentation: bool = False,
    iou_types: Sequence[str] | None = None,
) -> COCO:
    """A pycocotools ``COCO`` from a path, a parsed dict or a ``COCO`` (returned as is).

    A path or dict is validated and repaired for evaluation by :func:`prepare_ground_truth`.

    Args:
        gt_json: the ground truth.
        need_segmentation: same as ``"segm" in iou_types``.
        iou_types: what will be evaluated (default ``bbox``, with ``segm`` if
            ``need_segmentation``).

    Raises:
        FileNotFoundError / COCOFormatError: naming the file, the field and the entries.
    """
    if isinstance(gt_json, COCO):
        return gt_json
    if iou_types is None:
        iou_types = ("bbox", "segm") if need_segmentation else ("bbox",)
    source = os.fspath(gt_json) if isinstance(gt_json, (str, os.PathLike)) else "<gt dict>"
    if isinstance(gt_json, (str, os.PathLike)):
        data = _read_gt_json(source)
    else:
        data = gt_json
    data = prepare_ground_truth(data, source, iou_types)
    coco = COCO()
    coco.dataset = copy.copy(dict(data))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _read_gt_json(path: str) -> Any:
    """The parsed ground-truth json (a list too: the check names it as a results file)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ground-truth json not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise COCOFormatError(json_error_message(path, e)) from e


def load_results(results: ResultsLike) -> list[dict]:
    """Detections as a list of result dicts (a results json, a dataset of detections, a
    detectron2 ``.pth``, or a list), not joined to a ground truth: see
    :func:`ovdet.evaluation.predictions.load_predictions`."""
    return load_predictions(results).results


def results_for_iou_type(results: Sequence[Mapping], iou_type: str) -> list[dict]:
    """Copies of ``results`` holding only the geometry ``iou_type`` scores.

    ``loadRes`` treats a result with a "bbox" as a box result (box area, box polygon), so segm
    results must not carry one (as in detectron2's COCOEvaluator), and box results drop masks.
    """
    drop = "bbox" if iou_type == "segm" else "segmentation"
    return [{k: v for k, v in r.items() if k != drop} for r in results]


def _resolve_categories(
    coco_gt: COCO, classes: Iterable[str | int] | None, label: str
) -> list[int] | None:
    """Category names or ids -> sorted GT category ids; unknown ones are an error."""
    if classes is None:
        return None
    if isinstance(classes, str):
        raise ValueError(f"{label} must be a list of class names or ids, got the str {classes!r}")
    by_name = {c["name"]: c["id"] for c in coco_gt.dataset["categories"]}
    ids, unknown = set(), []
    for c in classes:
        if isinstance(c, str):
            if c in by_name:
                ids.add(by_name[c])
            else:
                unknown.append(c)
        elif int(c) in coco_gt.cats:
            ids.add(int(c))
        else:
            unknown.append(c)
    if unknown:
        raise ValueError(f"{label} classes not among the ground-truth categories: {unknown}")
    return sorted(ids)


def _mean_precision(
    ev: COCOeval, *, iou: float | None = None, area: str = "all", cat_index=None
) -> float:
    """AP (percent) from ``ev.eval["precision"]``, computed like ``COCOeval.summarize``."""
    p = ev.params
    a = p.areaRngLbl.index(area)
    m = len(p.maxDets) - 1  # the largest maxDets, as summarize() does for AP
    s = ev.eval["precision"]  # (T iou, R recall, K cats, A areas, M maxDets)
    if iou is not None:
        s = s[np.where(np.isclose(p.iouThrs, iou))[0]]
    s = s[:, :, :, a, m] if cat_index is None else s[:, :, cat_index, a, m]
    valid = s[s > -1]
    return float(np.mean(valid) * 100) if valid.size else float("nan")


def evaluate_coco_results(
    gt_json: GTLike,
    results: ResultsLike,
    novel: Iterable[str | int] | None = None,
    iou_types: Sequence[str] = ("bbox",),
    base: Iterable[str | int] | None = None,
    *,
    img_ids: Sequence[int] | None = None,
    max_dets: int = 100,
    per_class: bool = False,
    image_root: str | os.PathLike | None = None,
    trust_ids: bool = False,
    drop_unknown: bool = False,
) -> dict[str, dict[str, float]]:
    """Evaluate COCO-format detections with pycocotools, over all / base / novel classes.

    Args:
        gt_json: ground truth (path, dict or ``COCO``); crowd regions (``iscrowd``) are
            handled by COCOeval (matches to them are ignored).
        results: detections: a path (results json list, COCO dataset of detections,
            detectron2 ``instances_predictions.pth``), a list of result dicts with
            ``image_id``, ``category_id``, ``score``, ``bbox`` (XYWH) and, for ``segm``,
            ``segmentation`` (RLE or polygons), or :class:`JoinedPredictions`. They are
            validated and joined to the ground truth by
            :func:`~ovdet.evaluation.predictions.join_predictions` (by category name and
            image file name where the predictions carry them, else by checked ids).
        novel: novel class names (or category ids). With ``base``/``novel`` given, the
            output also has ``AP_base``, ``AP50_base``, ``AP_novel``, ``AP50_novel``.
        iou_types: subset of ``("bbox", "segm")``.
        base: base class names/ids; default: every GT category not in ``novel``.
        img_ids: evaluate only these images (default: all GT images).
        max_dets: detections per image kept (COCO: 100).
        per_class: also report ``AP-<class name>``.
        image_root: the folder the ground truth's ``file_name`` are relative to (matches
            prediction file names given as paths relative to it).
        trust_ids: do not check a join by ids against the ground-truth boxes.
        drop_unknown: drop predictions of images/categories not in the ground truth
            (with a warning) instead of refusing them.

    Returns:
        ``{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", [split keys]}}`` (percent).

    Raises:
        ValueError (``COCOFormatError``, ``PredictionFormatError``): a malformed ground
            truth or malformed results (file, index and field named), images or categories
            not in the ground truth, a join by ids the ground truth contradicts, unknown
            class names or iou types.
    """
    bad = [t for t in iou_types if t not in IOU_TYPES]
    if bad:
        raise ValueError(f"unknown iou types {bad}; use {list(IOU_TYPES)}")
    coco_gt = load_coco_gt(gt_json, iou_types=iou_types)
    if not isinstance(results, JoinedPredictions):
        results = join_predictions(
            results,
            coco_gt.dataset,
            iou_types,
            image_root=image_root,
            trust_ids=trust_ids,
            drop_unknown=drop_unknown,
        )
    results = results.results
    novel_ids = _resolve_categories(coco_gt, novel, "novel")
    base_ids = _resolve_categories(coco_gt, base, "base")
    split = novel_ids is not None or base_ids is not None
    if split:
        if base_ids is None:
            base_ids = sorted(set(coco_gt.getCatIds()) - set(novel_ids))
        if novel_ids is None:
            novel_ids = sorted(set(coco_gt.getCatIds()) - set(base_ids))
        both = sorted(set(base_ids) & set(novel_ids))
        if both:
            raise ValueError(f"category ids {both} are listed as both base and novel")
    keys = list(COCO_METRICS) + (list(SPLIT_METRICS) if split else [])

    out: dict[str, dict[str, float]] = OrderedDict()
    for iou_type in iou_types:
        if not results:
            warnings.warn(
                f"no detections to evaluate ({iou_type}): every metric is 0", stacklevel=2
            )
            out[iou_type] = {k: 0.0 for k in keys}
            continue
        dets = results_for_iou_type(results, iou_type)
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(dets)
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            if img_ids is not None:
                ev.params.imgIds = sorted(img_ids)
            ev.params.maxDets = [1, 10, max_dets]
            ev.evaluate()
            ev.accumulate()
        metrics = {
            "AP": _mean_precision(ev),
            "AP50": _mean_precision(ev, iou=0.5),
            "AP75": _mean_precision(ev, iou=0.75),
            "APs": _mean_precision(ev, area="small"),
            "APm": _mean_precision(ev, area="medium"),
            "APl": _mean_precision(ev, area="large"),
        }
        cat_pos = {c: k for k, c in enumerate(ev.params.catIds)}
        if split:
            for name, ids in (("base", base_ids), ("novel", novel_ids)):
                idx = [cat_pos[c] for c in ids]
                metrics[f"AP_{name}"] = _mean_precision(ev, cat_index=idx)
                metrics[f"AP50_{name}"] = _mean_precision(ev, iou=0.5, cat_index=idx)
        if per_class:
            for c, k in cat_pos.items():
                metrics[f"AP-{coco_gt.cats[c]['name']}"] = _mean_precision(ev, cat_index=[k])
        out[iou_type] = metrics
    return out


class OVCOCOEvaluator(ResultsCollector):
    """Open-vocabulary COCO evaluator for detectron2's inference loops.

    Uses the dataset's metadata: ``json_file`` (ground truth),
    ``thing_dataset_id_to_contiguous_id``, ``base_classes`` and ``novel_classes``. Results of
    :meth:`evaluate`: ``{"bbox": {...}, "segm": {...}}`` with ``AP``, ``AP50``, ``AP75``,
    ``APs``, ``APm``, ``APl``, ``AP_base``, ``AP50_base``, ``AP_novel``, ``AP50_novel``
    (percent), computed on the images that were processed.
    """

    results_file = "coco_instances_results.json"

    def __init__(
        self,
        dataset_name: str,
        output_dir: str | None = None,
        tasks: Sequence[str] = ("bbox",),
        *,
        distributed: bool = True,
        max_dets_per_image: int = 100,
        per_class: bool = False,
    ):
        """
        Args:
            dataset_name: a registered dataset (e.g. ``"ov_coco_val"``).
            output_dir: where ``coco_instances_results.json`` is written (None: not saved).
            tasks: ``"bbox"`` and/or ``"segm"``.
            distributed: gather predictions from all processes (detectron2.utils.comm).
            max_dets_per_image: detections per image evaluated.
            per_class: also report ``AP-<class name>``.
        """
        super().__init__(
            dataset_name,
            output_dir,
            tasks,
            distributed=distributed,
            max_dets_per_image=max_dets_per_image,
        )
        self._per_class = per_class

    def evaluate(self, img_ids: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
        """Gather, save and evaluate. Non-main processes return ``{}``."""
        gathered = self._gather()
        if gathered is None:
            return {}
        processed, results, tasks = gathered
        coco_gt = load_coco_gt(self._json_file, iou_types=tasks)
        # ids come from this dataset's metadata and boxes from the model: the join is not
        # checked and odd boxes (an early model's) are warned about, not refused
        joined = join_predictions(
            results, coco_gt.dataset, tasks, trust_ids=True, geometry_errors=False
        )
        res = evaluate_coco_results(
            coco_gt,
            joined,
            novel=self._metadata.get("novel_classes"),
            base=self._metadata.get("base_classes"),
            iou_types=tasks,
            img_ids=processed if img_ids is None else img_ids,
            max_dets=self._max_dets,
            per_class=self._per_class,
        )
        for task, metrics in res.items():
            logger.info(
                f"{self._dataset_name} {task}: "
                + ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if "-" not in k)
            )
        return copy.deepcopy(res)
