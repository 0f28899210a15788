"""RKD + HierKD global on OV-Shapes (a combination of objectives). Trusted input."""

from ovdet.methods.hierkd import hierkd_distiller

from .rkd_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.distillers = [
    model.distillers[0],
    hierkd_distiller(None, in_channels=64, embed_dim=128),
]
train.output_dir = "./output/ov_shapes/rkd_hierkd_small"
