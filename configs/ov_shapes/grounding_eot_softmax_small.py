"""The classification-loss ablation of configs/ov_shapes/grounding_eot_small.py: the "eot"
readout and K = 2 fusion, trained with a softmax over the prompt's tokens and a learned
background embedding (cross-entropy, ViLD-text's rule) instead of GLIP's sigmoid focal loss.

Why: with the eot readout and no fusion, the grounding head differs from ViLD-text's
classifier mainly in its loss (independent sigmoids vs one softmax over the classes and the
background; docs/grounding.md). This config isolates that difference with fusion kept.
"""

from .grounding_eot_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.roi_heads.box_predictor.cls_loss = "softmax"
train.output_dir = "./output/ov_shapes/grounding_eot_softmax_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
