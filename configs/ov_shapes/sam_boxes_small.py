"""SAM as the mask head of the OV-Shapes ViLD-text detector (the mask study's ``sam_boxes``).

``vild_text_small.py`` with :func:`ovdet.modeling.sam.with_sam_masks`: the detector's final
boxes are prompted into SAM (the shipped small SAM, ``ov-shapes-small-sam``), whose masks
replace the mask head's. Nothing trains (``train.max_iter = 0``): set
``train.init_checkpoint`` to a trained ViLD-text ``model_final.pth`` (the OV-Shapes benchmark
uses the same seed's). Any ``--sam`` spec works for ``sam`` (``vit_b:/path/sam_vit_b.pth``).
"""

from detectron2.config import LazyCall as L

from ovdet.modeling.sam import with_sam_masks

from .vild_text_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model = L(with_sam_masks)(model=model, sam="ov-shapes-small-sam")
train.max_iter = 0
train.init_checkpoint = ""  # a trained vild_text_small model_final.pth
train.output_dir = "./output/ov_shapes/sam_boxes_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
