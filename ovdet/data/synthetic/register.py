"""Register a generated OV-Shapes dataset in detectron2's catalogs."""

from __future__ import annotations

import os
from pathlib import Path

from ovdet.data.synthetic.dataset import FILES, SPLIT_FILE, load_split


def register_ov_shapes(
    root: str | os.PathLike, prefix: str = "ov_shapes", *, replace: bool = False
) -> list[str]:
    """Register ``{prefix}_train_base``, ``{prefix}_train_all`` and ``{prefix}_val``.

    Uses :func:`ovdet.data.datasets.register_ov_dataset` (evaluator type ``"ov_coco"``), with
    ``thing_classes`` / ``thing_dataset_id_to_contiguous_id`` declared from ``split.json``
    (so nothing but ``split.json`` is read now):

    * ``_train_base``: base classes only (contiguous ids = base classes in id order; its
      ``novel_classes`` is empty since its json has no novel category);
    * ``_train_all`` and ``_val``: all classes, ``novel_classes`` = the novel split.

    Extra metadata of each: ``captions_json`` (the split's captions file), ``split_json``,
    ``mask_format`` ("bitmask": segmentations are RLE), ``ov_shapes_novel`` (novel names).

    Args:
        root: folder written by ``ovdet data ov-shapes --out``.
        prefix: dataset name prefix.
        replace: re-register names that already exist with different paths.

    Returns:
        The registered dataset names.
    """
    from ovdet.data.datasets import register_ov_dataset

    root = Path(root).resolve()
    split = load_split(root)
    cats = sorted(split["categories"], key=lambda c: c["id"])
    novel = [c["name"] for c in cats if c["name"] in set(split["novel"])]
    base_cats = [c for c in cats if c["name"] not in set(novel)]
    files = split.get("files", FILES)
    specs = (
        ("train_base", files["train_base"], "images_train", "captions_train", base_cats, []),
        ("train_all", files["train_all"], "images_train", "captions_train", cats, novel),
        ("val", files["val"], "images_val", "captions_val", cats, novel),
    )
    names = []
    for suffix, json_name, images_key, captions_key, split_cats, split_novel in specs:
        name = f"{prefix}_{suffix}"
        register_ov_dataset(
            name,
            root / json_name,
            root / files[images_key],
            novel=split_novel,
            evaluator_type="ov_coco",
            extra_metadata={
                "thing_classes": [c["name"] for c in split_cats],
                "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(split_cats)},
                "captions_json": str(root / files[captions_key]),
                "split_json": str(root / SPLIT_FILE),
                "mask_format": "bitmask",
                "ov_shapes_novel": list(novel),
            },
            replace=replace,
        )
        names.append(name)
    return names
