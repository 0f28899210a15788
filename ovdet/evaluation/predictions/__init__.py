"""Detections to score: reading them in the formats detectors write, validating them, and
joining them to the ground truth (the ids pycocotools compares).

Formats read by :func:`load_predictions`:

* a json list of COCO results ``{"image_id", "category_id", "bbox" (XYWH), "score"
  [, "segmentation"]}``: detectron2's ``coco_instances_results.json``, mmdetection's
  ``*.bbox.json`` / ``*.segm.json``, YOLO exports (extra keys are ignored), ``ovdet detect``'s
  ``results.json`` (whose entries may carry ``category_name`` and ``file_name``);
* a COCO *dataset* of detections (``images``, ``categories``, ``annotations`` with ``score``),
  e.g. ``ovdet detect``'s ``detections.json``: its own ids are translated through its
  ``images[].file_name`` and ``categories[].name``;
* detectron2's ``instances_predictions.pth`` (``[{"image_id", "instances": [results]}]``),
  whose ``category_id`` are detectron2's contiguous class indices: index ``i`` is the
  ``i``-th ground-truth category in id order, as detectron2 numbers them.

The join rule (:func:`join_predictions`)
----------------------------------------
Categories are joined **by name** when the predictions name them (``category_name`` on every
result, a dataset file's ``categories``, or ``category_id`` given as a string): each name
must be a ground-truth category name, exactly or after ignoring case, ``_`` and ``-``;
the ground truth's id of that name is used. Otherwise they are joined **by id**, and every
id must be a ground-truth category id.

Images are joined **by file name** when the predictions name them (``file_name`` on every
result, a dataset file's ``images``, or ``image_id`` given as a string): the name is matched
to the ground truth's ``file_name`` (or, for LVIS, the last two parts of ``coco_url``) in
this order: the same path; the path relative to ``image_root`` (when given); the longest
trailing part of the path that is a ground-truth ``file_name``; the basename, when no other
ground-truth image has that basename (a shared basename is refused as ambiguous: give
``image_root``); the basename without extension (for a string ``image_id``). The report says
how many images each way matched. Otherwise images are joined **by id**, and every id must
be a ground-truth image id.

A join by ids cannot prove that the ids mean what the ground truth means (``ovdet detect``
numbers images 1..N in input order and classes 1..C in vocabulary order; a YOLO export
numbers classes from 0). Unless ``trust_ids`` is set, it is checked against the ground-truth
boxes, on each image's top-scoring detections (as many as the image has objects):

* images: the fraction ``L`` of those detections that overlap a ground-truth box of their
  image (IoU >= 0.5) is compared with ``L0``, the same fraction when every detection is put
  on another image (cyclic shifts of the image list). The join is refused when
  ``L < 0.5`` and ``L - L0 < 0.1``: the detections fit their images no better than other
  images.
* categories: among the detections that overlap a ground-truth box, the agreement ``A``
  between the detection's category and the box's is compared with the chance agreement
  ``Pe`` of the two category distributions (Cohen's kappa). The join is refused when
  ``A < 0.5`` and ``(A - Pe) / (1 - Pe) < 0.2``, naming the most frequent confusions.

With too few detections or objects to decide (fewer than 2 images or 10 detections for the
image test, fewer than 10 overlapping detections or a single category for the category
test), a warning says that the join could not be verified. A detector too weak to pass the
test (its top detections rarely overlap any object) needs ``trust_ids=True`` (``ovdet
evaluate --trust-ids``) or names in its predictions.
"""

from __future__ import annotations

from ovdet.evaluation.predictions.ground_truth import gt_file_name as gt_file_name
from ovdet.evaluation.predictions.join import join_predictions
from ovdet.evaluation.predictions.load import PredictionFormatError, Predictions, load_predictions
from ovdet.evaluation.predictions.load import PredictionsLike as PredictionsLike
from ovdet.evaluation.predictions.report import JoinedPredictions, JoinReport

__all__ = [
    "JoinReport",
    "JoinedPredictions",
    "PredictionFormatError",
    "Predictions",
    "join_predictions",
    "load_predictions",
]
