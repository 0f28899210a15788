"""RKD on OV-LVIS, Mask R-CNN R50-FPN, detectron2's 4x (ovdet's variant; one stage).

RKD's recipe is ``rkd_r50_fpn_mask_1x.py`` (a base model first, then RKD; docs/recipes.md).
Region L1 + inter-embedding relationship matching on the first 5 of the stored top-32
proposals per image (docs/methods.md#rkd; official LVIS weights 0.25 and 0.13, see
ovdet/methods/rkd/config.py), without RKD's NMS at 0.5 and with 1.0x + 1.5x crops. Pseudo
image-level supervision (PIS) and the weight-transfer function of the paper are not part of
it. Trusted input: executed Python.
"""

from ovdet.methods.rkd import RKD_LVIS_IRM, RKD_LVIS_L1, rkd_distiller

from .vild_r50_fpn_mask_d2_4x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller(official_l1_weight=RKD_LVIS_L1, official_irm_weight=RKD_LVIS_IRM)]
train.output_dir = "./output/ov_lvis/rkd_r50_fpn_mask_d2_4x"
