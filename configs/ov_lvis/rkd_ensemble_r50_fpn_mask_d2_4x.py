"""ViLD-ensemble heads trained with the RKD objective on OV-LVIS, Mask R-CNN R50-FPN,
detectron2's 4x (a combination, ovdet's d2 variant).

The image head learns from RKD (L1 + relationship matching, the first 5 stored proposals, the
official LVIS weights as in ``rkd_r50_fpn_mask_d2_4x.py``); the text head, λ = 2/3 and rare
classes as novel are ViLD-ensemble's (with the sigmoid text head of
``vild_ensemble_r50_fpn_mask_d2_4x.py``). Trusted input: executed Python.
"""

from ovdet.methods.rkd import RKD_LVIS_IRM, RKD_LVIS_L1, rkd_distiller

from .vild_ensemble_r50_fpn_mask_d2_4x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller(official_l1_weight=RKD_LVIS_L1, official_irm_weight=RKD_LVIS_IRM)]
train.output_dir = "./output/ov_lvis/rkd_ensemble_r50_fpn_mask_d2_4x"
