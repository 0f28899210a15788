"""The fusion ablation of configs/ov_shapes/grounding_eot_small.py: the "eot" readout with
K = 0 fusion layers (region-token scores on unfused features; the RPN sees no text)."""

from .grounding_eot_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.fusion_layers = 0
train.output_dir = "./output/ov_shapes/grounding_eot_nofusion_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
