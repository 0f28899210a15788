"""The OV-Shapes mask study: where the masks of novel objects come from (docs/sam.md).

Every method starts from the **ViLD-text detector of the same seed** (its boxes and classes
stay fixed: its weights are loaded and only the mask source changes), so the methods differ in
their masks alone:

* ``vild_text`` (the benchmark's own): the class-agnostic mask head trained on base masks.
* ``sam_boxes``: SAM prompted with the detector's final boxes
  (:func:`~ovdet.modeling.sam.with_sam_masks`, the shipped small SAM), no training.
* ``mask_head_base`` (the control): the mask head fine-tuned for :data:`FINETUNE_ITERS` more
  iterations (the config's; ``--det-iters`` sets it too) on the training images with
  **every** object's box, base objects with their masks and novel objects with **boxes
  only** (no mask target).
* ``sam_mask_head``: the same fine-tuning, the novel boxes' masks from SAM
  (``ovdet sam-masks``: the shipped small SAM prompted with each box; masks whose predicted
  IoU is below :data:`MIN_MASK_SCORE` are no target).
* ``mask_head_oracle``: the same fine-tuning with the novel objects' true masks (the ceiling).

The fine-tuning trains ``roi_heads.mask_head`` only (``train.trainable``): backbone, RPN, box
head and classifier are frozen (BatchNorm included), so the boxes at test are the ViLD-text
model's. Its data is the all-class training json with the novel masks removed, replaced by
SAM's, or kept; the classifier's training vocabulary is every class (its loss trains nothing).

These methods need ``vild_text`` earlier in the same run (``--methods vild_text,sam_boxes,
mask_head_base,sam_mask_head,mask_head_oracle``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ovdet.benchmarks.ov_shapes.context import MethodContext
from ovdet.benchmarks.ov_shapes.inputs import vild_text_weights

__all__ = [
    "FINETUNE_ITERS",
    "MASK_METHODS",
    "MIN_MASK_SCORE",
    "SAM_SPEC",
    "mask_training_json",
]

logger = logging.getLogger(__name__)

SAM_SPEC = "ov-shapes-small-sam"  # the shipped small SAM (trained on base masks only)
FINETUNE_ITERS = 400  # configs/ov_shapes/mask_head_finetune_small.py (--det-iters overrides)
MIN_MASK_SCORE = 0.5  # SAM's predicted IoU below this: the box trains no mask (fixed in advance)
NOVEL_MASKS = ("none", "sam", "gold")


def mask_training_json(
    root: str | Path, out: str | Path, novel_masks: str, *, sam: str = SAM_SPEC
) -> Path:
    """The all-class training json of an OV-Shapes root with the novel objects' masks
    removed (``"none"``), replaced by SAM's masks of their boxes (``"sam"``, with SAM's
    predicted IoU as ``mask_score``) or kept (``"gold"``). Base objects keep their masks.

    Returns:
        The json written under ``out`` (SAM's run resumes: ``ovdet sam-masks``).
    """
    from ovdet.data.synthetic import load_split
    from ovdet.data.synthetic.catalog import split_files
    from ovdet.utils.io import write_json

    if novel_masks not in NOVEL_MASKS:
        raise ValueError(f"novel_masks must be one of {NOVEL_MASKS}, got {novel_masks!r}")
    files = split_files(root)
    split = load_split(root)
    novel_ids = {c["id"] for c in split["categories"] if c["name"] in set(split["novel"])}
    data = json.loads(files["train_all"].read_text(encoding="utf-8"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if novel_masks != "gold":
        for ann in data["annotations"]:
            if ann["category_id"] in novel_ids:
                ann.pop("segmentation", None)
    boxes = out / f"train_novel_{novel_masks}.json"
    write_json(boxes, data)
    if novel_masks != "sam":
        return boxes
    from ovdet.modeling.sam.annotate import add_sam_masks

    target = out / "train_novel_sam_masks.json"
    stats = add_sam_masks(boxes, files["images_train"], sam, target, progress=False)
    logger.info("SAM masks of %d novel boxes, mean predicted IoU %s", stats["masked"],
                stats["mean_mask_score"])  # fmt: skip
    return target


def _prepare_sam_boxes(ctx: MethodContext, cfg: Any) -> None:
    from ovdet.utils.io import file_sha256

    weights = vild_text_weights(ctx)
    cfg.train.init_checkpoint = str(weights)
    cfg.train.max_iter = 0  # evaluate the ViLD-text weights with SAM's masks
    cfg.mask_study = dict(init_sha256=file_sha256(weights), masks="sam_on_detections")


def _finetune(novel_masks: str):
    def prepare(ctx: MethodContext, cfg: Any) -> None:
        from ovdet.data.datasets import register_ov_dataset
        from ovdet.data.synthetic import load_split
        from ovdet.data.synthetic.catalog import split_files
        from ovdet.utils.io import file_sha256

        weights = vild_text_weights(ctx)
        train_json = mask_training_json(ctx.data_root, ctx.work_dir / "data", novel_masks)
        name = f"{cfg.ov_shapes.prefix}_{ctx.name}_train"
        register_ov_dataset(
            name,
            train_json,
            split_files(ctx.data_root)["images_train"],
            novel=list(load_split(ctx.data_root)["novel"]),
            replace=True,
        )
        cfg.dataloader.train.dataset.names = name
        cfg.dataloader.train.mapper.masks_optional = True
        cfg.dataloader.train.mapper.min_mask_score = MIN_MASK_SCORE
        cfg.train.init_checkpoint = str(weights)  # max_iter: the config's, or --det-iters
        cfg.mask_study = dict(
            init_sha256=file_sha256(weights),
            novel_masks=novel_masks,
            train_json_sha256=file_sha256(train_json),
        )

    return prepare


# name -> (config under configs/, description, prepare)
MASK_METHODS = {
    "sam_boxes": (
        "ov_shapes/sam_boxes_small.py",
        "SAM masks of ViLD-text's boxes (the shipped small SAM; no training)",
        _prepare_sam_boxes,
    ),
    "mask_head_base": (
        "ov_shapes/mask_head_finetune_small.py",
        f"ViLD-text's mask head + {FINETUNE_ITERS} its on base masks, novel boxes without "
        "masks (the control)",
        _finetune("none"),
    ),
    "sam_mask_head": (
        "ov_shapes/mask_head_finetune_small.py",
        f"ViLD-text's mask head + {FINETUNE_ITERS} its, novel boxes with SAM's masks "
        f"(predicted IoU >= {MIN_MASK_SCORE})",
        _finetune("sam"),
    ),
    "mask_head_oracle": (
        "ov_shapes/mask_head_finetune_small.py",
        f"ViLD-text's mask head + {FINETUNE_ITERS} its, novel boxes with their true masks "
        "(the ceiling)",
        _finetune("gold"),
    ),
}
