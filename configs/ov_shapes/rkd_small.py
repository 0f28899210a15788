"""RKD on OV-Shapes: region L1 + inter-embedding relationship matching on the top-5 proposals.

ovdet's normalised RKD form (``RKDNormalisedDistillation``: L1 summed over D, IRM / N^2 at
weight 1), the form these OV-Shapes results were trained with; the L1 weight is the paper's
0.15 x 100 rescaled to the teacher's D = 128 (the same L1 value as the official mean over
N x D). The official objective (``rkd_distiller()``, form="official") is the OV-COCO / OV-LVIS
default (docs/methods.md#rkd). Trusted input: executed Python.
"""

from ovdet.methods.rkd import rkd_distiller

from .vild_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.distillers = [rkd_distiller(form="normalised", embed_dim=128)]
train.output_dir = "./output/ov_shapes/rkd_small"
