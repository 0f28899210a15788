"""HierKD on OV-Shapes: instance level (ViLD-image) + global level (FPN-pooled image embedding
vs the teacher's text embedding of one caption per image, InfoNCE over the batch).

Both levels keep the forms these OV-Shapes results were trained with: the instance level is
ViLD-image's L1 on the stored proposals (not the official L2 x 0.05 on predicted boxes, which
needs an online teacher: ``hierkd_instance_distiller``), and the global InfoNCE averages its two
directions and learns the log of its scale (the official code sums the directions and learns
the scale itself; docs/methods.md#hierkd). The caption text tower is the seed's teacher (the
benchmark sets it). Trusted input.
"""

from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.vild import vild_distiller

from .vild_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

# text_encoder: filled by the benchmark (the teacher's text tower, D = 128)
model.distillers = [
    vild_distiller(),
    hierkd_distiller(None, in_channels=64, embed_dim=128, reduction="mean", scale_param="log"),
]
train.output_dir = "./output/ov_shapes/hierkd_small"
