"""ViLD-ensemble heads trained with the RKD objective on OV-COCO, R50-FPN, detectron2's
standard 1x (a combination, ovdet's d2 variant).

The separate image head learns from RKD's region L1 + inter-embedding relationship matching
on the top-5 class-agnostic proposals per image (official COCO weights, see
ovdet/methods/rkd/config.py) instead of ViLD-image's L1 on every stored proposal; the text
head, λ = 2/3 and the image-head temperature are ViLD-ensemble's
(docs/methods.md#rkd-ensemble). Not a published recipe: a combination of the two papers'
parts; ``rkd_ensemble_r50_fpn_scratch_lsj_180k.py`` trains it with ViLD-ensemble's recipe.
Trusted input: executed Python.
"""

from ovdet.methods.rkd import rkd_distiller

from .vild_ensemble_r50_fpn_d2_1x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller()]
train.output_dir = "./output/ov_coco/rkd_ensemble_r50_fpn_d2_1x"
