"""Built-in OV-LVIS datasets: LVIS v1, the 337 rare classes are novel
(docs/methods.md#open-vocabulary-detection-protocol).

Registered names (paths relative to the datasets root, see datasets/README.md):

=======================  ===================================================================
``ov_lvis_train_base``   ``coco/`` + ``lvis/ov_lvis/lvis_v1_train_base.json``: LVIS v1 train
                         without rare annotations; 866 base classes carry boxes
``ov_lvis_val``          ``coco/`` + ``lvis/ov_lvis/lvis_v1_val.json``: LVIS v1 val, 1203
                         classes, rare = ``novel_classes``
=======================  ===================================================================

Both list all 1203 categories, so contiguous id ``i`` is row ``i`` of a 1203-row embedding
file for train and val alike (see :mod:`ovdet.data.ov_splits`). ``thing_classes`` are the
json's names (``"aerosol_can"``); ``readable_thing_classes`` are prompt-ready
(``"aerosol can"``). Extra metadata for federated / frequency-aware losses, in contiguous
order: ``class_frequency`` ("r"/"c"/"f") and ``class_image_count`` (LVIS v1 train image
counts; 0 for rare classes in ``ov_lvis_train_base``, matching its json).
"""

from __future__ import annotations

import os

from ovdet.data.builtin_meta import lvis_categories, readable_name
from ovdet.data.datasets import register_ov_dataset
from ovdet.data.ov_coco import datasets_root
from ovdet.data.ov_splits import OV_LVIS_FILES

__all__ = ["OV_LVIS_DATASETS", "register_ov_lvis"]

# name -> (image folder, json file)
OV_LVIS_DATASETS: dict[str, tuple[str, str]] = {
    "ov_lvis_train_base": ("coco", f"lvis/ov_lvis/{OV_LVIS_FILES['train_base']}"),
    "ov_lvis_val": ("coco", f"lvis/ov_lvis/{OV_LVIS_FILES['val']}"),
}


def register_ov_lvis(root: str | os.PathLike | None = None, *, replace: bool = False) -> list[str]:
    """Register the OV-LVIS datasets (cheap: nothing is read).

    Args:
        root: datasets folder (default ``$OVDET_DATASETS`` or ``./datasets``).
        replace: re-point names already registered with another root.

    Returns:
        The registered names.
    """
    base = datasets_root(root)
    cats = sorted(lvis_categories(), key=lambda c: c["id"])
    names = [c["name"] for c in cats]
    rare = [c["name"] for c in cats if c["frequency"] == "r"]
    common = {
        "thing_classes": names,
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
        "readable_thing_classes": [readable_name(n) for n in names],
        "class_frequency": [c["frequency"] for c in cats],
    }
    counts = [int(c["image_count"]) for c in cats]
    specs = [(name, spec, {}) for name, spec in OV_LVIS_DATASETS.items()]
    # LVIS images are COCO images with COCO ids: COCO captions apply (HierKD)
    specs.append(
        (
            "ov_lvis_train_base_captions",
            OV_LVIS_DATASETS["ov_lvis_train_base"],
            {"captions_json": str(base / "coco/annotations/captions_train2017.json")},
        )
    )
    for name, (image_dir, json_rel), extra in specs:
        train = name.startswith("ov_lvis_train_base")
        image_count = [0 if train and c["frequency"] == "r" else n for c, n in zip(cats, counts)]
        register_ov_dataset(
            name,
            base / json_rel,
            base / image_dir,
            novel=rare,
            evaluator_type="ov_lvis",
            extra_metadata={**common, "class_image_count": image_count, **extra},
            replace=replace,
        )
    return [name for name, _, _ in specs]
