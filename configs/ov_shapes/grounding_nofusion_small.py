"""The fusion ablation of configs/ov_shapes/grounding_small.py: K = 0 fusion layers.

Everything else is the same (region-word head, focal loss on positive maps, prompts, text
encoder, schedule), so the difference between the two is what fusing the prompt into the FPN
features before the RPN buys.
"""

from .grounding_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.fusion_layers = 0
train.output_dir = "./output/ov_shapes/grounding_nofusion_small"
