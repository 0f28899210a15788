"""RKD on OV-COCO, R50-FPN, 1x: region-based L1 + inter-embedding relationship matching.

On the top-5 class-agnostic proposals per image (docs/methods.md#rkd; official COCO
weights, see ovdet/methods/rkd/config.py). Pseudo image-level supervision (PIS) and the
weight-transfer function of the paper are not part of this config: PIS needs pseudo-labels
from a teacher (``ovdet.pseudo``). Trusted input: executed Python.
"""

from ovdet.methods.rkd import rkd_distiller

from .vild_r50_fpn_1x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller()]
train.output_dir = "./output/ov_coco/rkd_r50_fpn_1x"
