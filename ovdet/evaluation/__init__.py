"""Open-vocabulary evaluation: COCO AP over all / base / novel classes, LVIS APr/APc/APf."""

from ovdet.evaluation.coco import (
    OVCOCOEvaluator,
    evaluate_coco_results,
    instances_to_coco_results,
    load_coco_gt,
)
from ovdet.evaluation.lvis import LVISOVEvaluator, evaluate_lvis_results, load_lvis_gt

__all__ = [
    "LVISOVEvaluator",
    "OVCOCOEvaluator",
    "evaluate_coco_results",
    "evaluate_lvis_results",
    "instances_to_coco_results",
    "load_coco_gt",
    "load_lvis_gt",
]
