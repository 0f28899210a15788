"""Fine-tune only the class-agnostic mask head of a trained OV-Shapes ViLD-text detector
(the mask study's ``mask_head_base``, ``sam_mask_head`` and ``mask_head_oracle``).

Starts from ``train.init_checkpoint`` (a ``vild_text_small`` ``model_final.pth``) and trains
``roi_heads.mask_head`` alone (``train.trainable``: everything else frozen, BatchNorm
statistics included, so the boxes and classes stay the detector's) for 400 iterations on
the all-class training images. Boxes without a mask (``masks_optional``) or with a SAM mask
of predicted IoU below ``min_mask_score`` train no mask. The classifier's training vocabulary
is every class: novel boxes are foreground for the mask head (the frozen classifier learns
nothing from them). The benchmark sets the training json (novel masks none / SAM / true,
docs/sam.md); by hand, register a COCO json and set
``dataloader.train.dataset.names``.
"""

from detectron2.config import LazyCall as L

from ovdet.data.synthetic import ov_shapes_class_names, ov_shapes_dataset
from ovdet.text import load_class_embeddings

from .vild_text_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

dataloader.train.dataset.names = L(ov_shapes_dataset)(
    root="${ov_shapes.root}", split="train_all", prefix="${ov_shapes.prefix}"
)
dataloader.train.mapper.masks_optional = True
dataloader.train.mapper.min_mask_score = 0.5
model.roi_heads.box_predictor.classifier.train_embeddings = L(load_class_embeddings)(
    path="${ov_shapes.embeddings}",
    select=L(ov_shapes_class_names)(root="${ov_shapes.root}", which="all"),
)
lr_multiplier.warmup_iters = 20
train.init_checkpoint = ""  # a trained vild_text_small model_final.pth
train.trainable = ["roi_heads.mask_head"]
train.max_iter = 400
train.checkpointer = dict(period=50, max_to_keep=1)  # a killed run loses at most 50 iterations
train.output_dir = "./output/ov_shapes/mask_head_finetune_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
