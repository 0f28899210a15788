"""Datasets (COCO-format with a base/novel split, OV-COCO, OV-LVIS) and the OV mapper.

Importing this package registers the built-in names (paths only, nothing is read):
``ov_coco_train_base``, ``ov_coco_train_all``, ``ov_coco_val``, ``ov_lvis_train_base`` and
``ov_lvis_val`` under ``$OVDET_DATASETS`` (default ``./datasets``); see datasets/README.md.
"""

from ovdet.data.datasets import (
    COCOFormatError,
    read_coco_json,
    register_ov_dataset,
    split_classes,
    validate_coco_dict,
)
from ovdet.data.mapper import OVDatasetMapper, build_albumentations
from ovdet.data.ov_coco import datasets_root, register_ov_coco
from ovdet.data.ov_lvis import register_ov_lvis

__all__ = [
    "COCOFormatError",
    "OVDatasetMapper",
    "build_albumentations",
    "datasets_root",
    "read_coco_json",
    "register_ov_coco",
    "register_ov_dataset",
    "register_ov_lvis",
    "split_classes",
    "validate_coco_dict",
]

register_ov_coco()
register_ov_lvis()
