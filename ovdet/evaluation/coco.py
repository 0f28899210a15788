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
from typing import Union

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet.data.datasets import read_coco_json, validate_coco_dict
from ovdet.evaluation.collect import IOU_TYPES, ResultsCollector
from ovdet.evaluation.results import instances_to_coco_results  # noqa: F401  (re-export)

__all__ = [
    "COCO_METRICS",
    "OVCOCOEvaluator",
    "check_results",
    "evaluate_coco_results",
    "load_coco_gt",
    "load_results",
]

logger = logging.getLogger(__name__)

COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
SPLIT_METRICS = ("AP_base", "AP50_base", "AP_novel", "AP50_novel")

GTLike = Union[str, os.PathLike, Mapping, COCO]
ResultsLike = Union[str, os.PathLike, Sequence[Mapping]]


def load_coco_gt(gt_json: GTLike, *, need_segmentation: bool = False) -> COCO:
    """A pycocotools ``COCO`` from a path, a parsed dict or a ``COCO`` (returned as is).

    Raises:
        FileNotFoundError / COCOFormatError: naming the file and the missing field.
    """
    if isinstance(gt_json, COCO):
        return gt_json
    source = os.fspath(gt_json) if isinstance(gt_json, (str, os.PathLike)) else "<gt dict>"
    data = read_coco_json(gt_json) if isinstance(gt_json, (str, os.PathLike)) else gt_json
    fields = ("image_id", "bbox", "category_id") + (("segmentation",) if need_segmentation else ())
    validate_coco_dict(data, source, image_fields=("id",), annotation_fields=fields)
    coco = COCO()
    coco.dataset = copy.copy(dict(data))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_results(results: ResultsLike) -> list[dict]:
    """Detections as a list of COCO result dicts, from a json path or a list.

    Raises:
        FileNotFoundError: missing file. ValueError: not a json list.
    """
    if isinstance(results, (str, os.PathLike)):
        path = os.fspath(results)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"detection results not found: {path}")
        try:
            with open(path) as f:
                results = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid json: {e}") from e
        source = path
    else:
        source = "results"
    if not isinstance(results, list):
        raise ValueError(
            f"{source}: detection results must be a json list of "
            '{"image_id", "category_id", "bbox", "score"} objects, got a '
            f"{type(results).__name__}"
        )
    return list(results)


def check_results(
    results: Sequence[Mapping],
    img_ids: set[int],
    cat_ids: set[int],
    iou_types: Sequence[str],
    source: str = "results",
) -> None:
    """Check required keys per result (index named) and ids against the ground truth."""
    need = ["image_id", "category_id", "score"]
    if "bbox" in iou_types:
        need.append("bbox")
    if "segm" in iou_types:
        need.append("segmentation")
    bad_cats, bad_imgs = set(), set()
    for i, r in enumerate(results):
        if not isinstance(r, Mapping):
            raise ValueError(f"{source}[{i}] is not a json object")
        for key in need:
            if key not in r:
                raise ValueError(f"{source}[{i}] has no '{key}' (needed: {', '.join(need)})")
        if "bbox" in iou_types and not (
            isinstance(r["bbox"], (list, tuple)) and len(r["bbox"]) == 4
        ):
            raise ValueError(f"{source}[{i}] has bbox={r['bbox']!r}; expected [x, y, w, h]")
        if "segm" in iou_types:
            segm = r["segmentation"]
            if not (isinstance(segm, Mapping) and "counts" in segm and "size" in segm):
                raise ValueError(
                    f"{source}[{i}] has a segmentation that is not an RLE dict "
                    "{'size': [h, w], 'counts': ...}"
                )
        if r["category_id"] not in cat_ids:
            bad_cats.add(r["category_id"])
        if r["image_id"] not in img_ids:
            bad_imgs.add(r["image_id"])
    if bad_cats:
        raise ValueError(
            f"{source}: category ids {sorted(bad_cats, key=str)} are not among the ground-truth "
            "categories; map detections to the ground truth's category ids"
        )
    if bad_imgs:
        raise ValueError(
            f"{source}: image ids {sorted(bad_imgs, key=str)[:20]} are not in the ground truth"
        )


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
) -> dict[str, dict[str, float]]:
    """Evaluate COCO-format detections with pycocotools, over all / base / novel classes.

    Args:
        gt_json: ground truth (path, dict or ``COCO``); crowd regions (``iscrowd``) are
            handled by COCOeval (matches to them are ignored).
        results: detections: path to a json list or a list of dicts with ``image_id``,
            ``category_id`` (GT ids), ``score``, ``bbox`` (XYWH) and, for ``segm``,
            ``segmentation`` (RLE).
        novel: novel class names (or category ids). With ``base``/``novel`` given, the
            output also has ``AP_base``, ``AP50_base``, ``AP_novel``, ``AP50_novel``.
        iou_types: subset of ``("bbox", "segm")``.
        base: base class names/ids; default: every GT category not in ``novel``.
        img_ids: evaluate only these images (default: all GT images).
        max_dets: detections per image kept (COCO: 100).
        per_class: also report ``AP-<class name>``.

    Returns:
        ``{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", [split keys]}}`` (percent).

    Raises:
        ValueError: malformed results (index named), category or image ids not in the GT,
            unknown class names, unknown iou types.
    """
    bad = [t for t in iou_types if t not in IOU_TYPES]
    if bad:
        raise ValueError(f"unknown iou types {bad}; use {list(IOU_TYPES)}")
    coco_gt = load_coco_gt(gt_json, need_segmentation="segm" in iou_types)
    source = os.fspath(results) if isinstance(results, (str, os.PathLike)) else "results"
    results = load_results(results)
    check_results(results, set(coco_gt.getImgIds()), set(coco_gt.getCatIds()), iou_types, source)
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
        res = evaluate_coco_results(
            self._json_file,
            results,
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
