"""OV-LVIS evaluation with the official lvis-api: AP, AP50, APr (novel), APc, APf.

LVIS is federated: a detection of a category counts only on images where that category is
verified present or absent (``neg_category_ids``), and false positives of
``not_exhaustive_category_ids`` are not penalised; lvis-api implements that. Up to 300
detections per image (the official limit). Numbers are percentages; ``nan`` where a group
has no ground truth.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from lvis import LVIS, LVISEval, LVISResults

from ovdet.data.datasets import COCOFormatError, validate_coco_dict
from ovdet.evaluation.coco import (
    IOU_TYPES,
    GTLike,
    ResultsLike,
    _read_gt_json,
    prepare_ground_truth,
    results_for_iou_type,
)
from ovdet.evaluation.collect import ResultsCollector
from ovdet.evaluation.predictions import JoinedPredictions, join_predictions

__all__ = ["LVIS_METRICS", "LVISOVEvaluator", "evaluate_lvis_results", "load_lvis_gt"]

logger = logging.getLogger(__name__)

LVIS_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


class _LVISFromDict(LVIS):
    """lvis-api's ``LVIS`` built from an already parsed dict (its constructor takes a path)."""

    def __init__(self, dataset: dict):
        self.logger = logging.getLogger("lvis.lvis")
        self.dataset = dataset
        self._create_index()


def load_lvis_gt(gt_json: GTLike | LVIS, iou_types: Sequence[str] = ("bbox",)) -> LVIS:
    """lvis-api ``LVIS`` from a path, a dict or an ``LVIS`` (returned as is).

    A path or dict is validated (and repaired where exact) like a COCO ground truth
    (:func:`ovdet.evaluation.coco.prepare_ground_truth`), then for LVIS's own fields.

    Raises:
        FileNotFoundError / COCOFormatError: naming the file and the missing field.
    """
    if isinstance(gt_json, LVIS):
        return gt_json
    source = os.fspath(gt_json) if isinstance(gt_json, (str, os.PathLike)) else "<gt dict>"
    data = _read_gt_json(source) if isinstance(gt_json, (str, os.PathLike)) else gt_json
    validate_coco_dict(
        data,
        source,
        image_fields=("id", "neg_category_ids", "not_exhaustive_category_ids"),
        annotation_fields=("image_id", "bbox", "category_id"),
    )
    data = dict(prepare_ground_truth(data, source, iou_types))
    for i, c in enumerate(data["categories"]):
        if c.get("frequency") not in ("r", "c", "f"):
            raise COCOFormatError(
                f"{source}: categories[{i}] (id={c['id']}) needs 'frequency' 'r', 'c' or 'f' "
                "(an LVIS json)"
            )
    return _LVISFromDict(data)


@contextlib.contextmanager
def _numpy_float_alias():
    """lvis-api 0.5.3's ``accumulate`` uses ``np.float``, removed in NumPy 1.24.

    The alias (it always meant the builtin ``float``) exists only while lvis-api runs and is
    removed again afterwards, so nothing else sees a changed NumPy.
    """
    added = not hasattr(np, "float")
    if added:
        np.float = float
    try:
        yield
    finally:
        if added:
            del np.float


def _pct(value: float) -> float:
    return float(value) * 100 if value > -1 else float("nan")


def evaluate_lvis_results(
    gt_json: GTLike | LVIS,
    results: ResultsLike,
    iou_types: Sequence[str] = ("bbox",),
    *,
    max_dets: int = 300,
    img_ids: Sequence[int] | None = None,
    image_root: str | os.PathLike | None = None,
    trust_ids: bool = False,
    drop_unknown: bool = False,
) -> dict[str, dict[str, float]]:
    """Evaluate detections on an LVIS-format ground truth.

    Args:
        gt_json: LVIS ground truth (path, dict or ``lvis.LVIS``).
        results: COCO-style detections (as for
            :func:`~ovdet.evaluation.coco.evaluate_coco_results`: validated and joined to
            the ground truth by name where they carry names, else by checked ids).
        iou_types: subset of ``("bbox", "segm")``.
        max_dets: detections kept per image (LVIS: 300).
        img_ids: evaluate only these images (default: all).
        image_root, trust_ids, drop_unknown: see
            :func:`~ovdet.evaluation.predictions.join_predictions`.

    Returns:
        ``{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"}}``.
    """
    bad = [t for t in iou_types if t not in IOU_TYPES]
    if bad:
        raise ValueError(f"unknown iou types {bad}; use {list(IOU_TYPES)}")
    gt = load_lvis_gt(gt_json, iou_types)
    if not isinstance(results, JoinedPredictions):
        results = join_predictions(
            results,
            gt.dataset,
            iou_types,
            image_root=image_root,
            trust_ids=trust_ids,
            drop_unknown=drop_unknown,
        )
    results = results.results
    out: dict[str, dict[str, float]] = OrderedDict()
    for iou_type in iou_types:
        if not results:
            warnings.warn(
                f"no detections to evaluate ({iou_type}): every metric is 0", stacklevel=2
            )
            out[iou_type] = {k: 0.0 for k in LVIS_METRICS}
            continue
        dets = results_for_iou_type(results, iou_type)
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(warnings.catch_warnings())
            stack.enter_context(_numpy_float_alias())
            warnings.simplefilter("ignore")
            dt = LVISResults(gt, dets, max_dets=max_dets)
            ev = LVISEval(gt, dt, iou_type)
            if img_ids is not None:
                ev.params.img_ids = sorted(img_ids)
            ev.run()
        res = ev.get_results()
        out[iou_type] = {k: _pct(res[k]) for k in LVIS_METRICS}
    return out


class LVISOVEvaluator(ResultsCollector):
    """OV-LVIS evaluator for detectron2's inference loops (lvis-api).

    Uses the dataset's ``json_file`` and ``thing_dataset_id_to_contiguous_id``; returns
    ``{"bbox": {...}, "segm": {...}}`` with :data:`LVIS_METRICS` (APr = rare = novel).
    """

    results_file = "lvis_instances_results.json"

    def __init__(
        self,
        dataset_name: str,
        output_dir: str | None = None,
        tasks: Sequence[str] = ("bbox", "segm"),
        *,
        distributed: bool = True,
        max_dets_per_image: int = 300,
    ):
        """
        Args:
            dataset_name: a registered LVIS-format dataset (e.g. ``"ov_lvis_val"``).
            output_dir: where ``lvis_instances_results.json`` is written (None: not saved).
            tasks: ``"bbox"`` and/or ``"segm"`` (``segm`` is skipped without masks).
            distributed: gather predictions from all processes.
            max_dets_per_image: detections per image kept (LVIS: 300).
        """
        super().__init__(
            dataset_name,
            output_dir,
            tasks,
            distributed=distributed,
            max_dets_per_image=max_dets_per_image,
        )

    def evaluate(self) -> dict[str, dict[str, float]]:
        """Gather, save and evaluate. Non-main processes return ``{}``."""
        gathered = self._gather()
        if gathered is None:
            return {}
        processed, results, tasks = gathered
        gt = load_lvis_gt(self._json_file, tasks)
        # ids come from this dataset's metadata and boxes from the model (see OVCOCOEvaluator)
        joined = join_predictions(results, gt.dataset, tasks, trust_ids=True, geometry_errors=False)
        res = evaluate_lvis_results(gt, joined, tasks, max_dets=self._max_dets, img_ids=processed)
        return copy.deepcopy(res)
