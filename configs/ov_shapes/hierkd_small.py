"""HierKD on OV-Shapes: instance level (ViLD-image) + global level (FPN-pooled image embedding
vs the teacher's text embedding of one caption per image, InfoNCE over the batch).

The caption text tower is the seed's teacher (the benchmark sets it). Trusted input.
"""

from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.vild import vild_distiller

from .vild_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

# text_encoder: filled by the benchmark (the teacher's text tower, D = 128)
model.distillers = [vild_distiller(), hierkd_distiller(None, in_channels=64, embed_dim=128)]
train.output_dir = "./output/ov_shapes/hierkd_small"
