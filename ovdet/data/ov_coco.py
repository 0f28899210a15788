"""Built-in OV-COCO datasets: 48 base / 17 novel classes
(docs/methods.md#open-vocabulary-detection-protocol).

Registered names (paths relative to :func:`datasets_root`, see datasets/README.md):

============================  ===========================================================
``ov_coco_train_base``        ``coco/train2017`` + ``coco/annotations/ov_coco/
                              instances_train2017_base.json`` (48 base classes)
``ov_coco_train_all``         ``coco/train2017`` + ``.../instances_train2017_all.json``
                              (65 classes, novel boxes included: oracle)
``ov_coco_val``               ``coco/val2017`` + ``.../instances_val2017_all.json``
                              (65 classes, the 17 novel marked in ``novel_classes``)
============================  ===========================================================

The jsons are written by ``datasets/prepare_ov_coco.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovdet.data.builtin_meta import (
    COCO_CATEGORIES,
    OV_COCO_BASE_IDS,
    OV_COCO_IDS,
    OV_COCO_NOVEL_NAMES,
)
from ovdet.data.datasets import register_ov_dataset
from ovdet.data.ov_splits import OV_COCO_FILES

__all__ = ["OV_COCO_DATASETS", "datasets_root", "register_ov_coco"]

# name -> (image folder, json file, category ids listed in the json)
OV_COCO_DATASETS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "ov_coco_train_base": (
        "coco/train2017",
        f"coco/annotations/ov_coco/{OV_COCO_FILES['train_base']}",
        OV_COCO_BASE_IDS,
    ),
    "ov_coco_train_all": (
        "coco/train2017",
        f"coco/annotations/ov_coco/{OV_COCO_FILES['train_all']}",
        OV_COCO_IDS,
    ),
    "ov_coco_val": (
        "coco/val2017",
        f"coco/annotations/ov_coco/{OV_COCO_FILES['val']}",
        OV_COCO_IDS,
    ),
}

# names whose dataset dicts also carry ``captions`` (HierKD, caption pseudo-labels):
# name -> (registered name it extends, COCO captions json)
OV_COCO_CAPTION_DATASETS: dict[str, tuple[str, str]] = {
    "ov_coco_train_base_captions": (
        "ov_coco_train_base",
        "coco/annotations/captions_train2017.json",
    ),
}


def datasets_root(root: str | os.PathLike | None = None) -> Path:
    """The datasets folder: ``root``, else ``$OVDET_DATASETS``, else ``./datasets``."""
    if root is None:
        root = os.environ.get("OVDET_DATASETS", "datasets")
    return Path(root).expanduser().absolute()


def register_ov_coco(root: str | os.PathLike | None = None, *, replace: bool = False) -> list[str]:
    """Register the OV-COCO datasets (cheap: nothing is read).

    Args:
        root: datasets folder (default ``$OVDET_DATASETS`` or ``./datasets``).
        replace: re-point names already registered with another root.

    Returns:
        The registered names.
    """
    base = datasets_root(root)
    coco_name = dict(COCO_CATEGORIES)
    specs = [(name, spec, {}) for name, spec in OV_COCO_DATASETS.items()]
    specs += [
        (name, OV_COCO_DATASETS[parent], {"captions_json": str(base / captions)})
        for name, (parent, captions) in OV_COCO_CAPTION_DATASETS.items()
    ]
    for name, (image_dir, json_rel, ids), extra in specs:
        classes = [coco_name[i] for i in ids]
        register_ov_dataset(
            name,
            base / json_rel,
            base / image_dir,
            novel=[c for c in OV_COCO_NOVEL_NAMES if c in classes],
            base=[coco_name[i] for i in OV_COCO_BASE_IDS],
            evaluator_type="ov_coco",
            extra_metadata={
                "thing_classes": classes,
                "thing_dataset_id_to_contiguous_id": {cid: i for i, cid in enumerate(ids)},
                **extra,
            },
            replace=replace,
        )
    return [name for name, _, _ in specs]
