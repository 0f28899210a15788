"""ViLD-ensemble heads trained with the RKD objective on OV-LVIS, Mask R-CNN R50-FPN, 4x.

A combination: the image head learns from RKD (L1 + relationship matching, top-5 proposals,
the official LVIS L1 weight as in ``rkd_r50_fpn_mask_4x.py``); the text head, λ = 2/3 and rare
classes as novel are ViLD-ensemble's. Trusted input: executed Python.
"""

from ovdet.methods.rkd import RKD_LVIS_L1, rkd_distiller

from .vild_ensemble_r50_fpn_mask_4x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller(official_l1_weight=RKD_LVIS_L1)]
train.output_dir = "./output/ov_lvis/rkd_ensemble_r50_fpn_mask_4x"
