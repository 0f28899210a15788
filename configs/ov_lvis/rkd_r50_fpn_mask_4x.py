"""RKD on OV-LVIS, Mask R-CNN R50-FPN, 4x: region-based L1 + inter-embedding relationship matching.

On the top-5 class-agnostic proposals per image (docs/methods.md#rkd; official LVIS
weights, see ovdet/methods/rkd/config.py). Pseudo image-level supervision (PIS) and the
weight-transfer function of the paper are not part of this config: PIS needs pseudo-labels
from a teacher (``ovdet.pseudo``). Trusted input: executed Python.
"""

from ovdet.methods.rkd import RKD_LVIS_L1, rkd_distiller

from .vild_r50_fpn_mask_4x import dataloader, lr_multiplier, model, optimizer, train

# official LVIS L1 weight (0.25, times rkd_temperature 100; ovdet's L1 sums over D -> / D)
model.distillers = [rkd_distiller(official_l1_weight=RKD_LVIS_L1)]
train.output_dir = "./output/ov_lvis/rkd_r50_fpn_mask_4x"
