"""RKD on OV-Shapes: region L1 + inter-embedding relationship matching on the top-5 proposals.

The L1 weight is the paper's 0.15 x 100 rescaled to the teacher's D = 128 (ovdet sums the
L1 over D; the official code averages it). Trusted input: executed Python.
"""

from ovdet.methods.rkd import rkd_distiller

from .vild_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.distillers = [rkd_distiller(embed_dim=128)]
train.output_dir = "./output/ov_shapes/rkd_small"
