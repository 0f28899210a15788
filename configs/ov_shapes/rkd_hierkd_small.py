"""RKD + HierKD global on OV-Shapes (a combination of objectives). Trusted input.

Both objectives in ovdet's earlier forms, the ones these OV-Shapes results were trained with:
RKD's normalised form (as ``rkd_small.py``) and HierKD's global InfoNCE with the two directions
averaged and a log-parametrised scale (as ``hierkd_small.py``; docs/methods.md#hierkd).
"""

from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.rkd import rkd_distiller

from .rkd_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.distillers = [
    rkd_distiller(form="normalised", embed_dim=128),
    hierkd_distiller(None, in_channels=64, embed_dim=128, reduction="mean", scale_param="log"),
]
train.output_dir = "./output/ov_shapes/rkd_hierkd_small"
