"""RKD on OV-COCO, R50-FPN, detectron2's standard 1x (ovdet's variant; one stage).

RKD's recipe is ``rkd_r50_c4_1x.py`` (R50-C4, a base model first, then RKD; docs/recipes.md).
This variant trains ViLD-text's d2 detector with RKD's objective from the start: region L1 +
inter-embedding relationship matching on the top-5 class-agnostic proposals per image of the
top-32 store (official COCO weights and objective, ovdet/methods/rkd/config.py;
docs/methods.md#rkd). The top 5 here are the 5 best RPN proposals, without RKD's NMS at 0.5
and with 1.0x + 1.5x crops (RKD: 1.0x); pseudo image-level supervision (PIS) and the
weight-transfer function of the paper are not part of it. Trusted input: executed Python.
"""

from ovdet.methods.rkd import rkd_distiller

from .vild_r50_fpn_d2_1x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller()]
train.output_dir = "./output/ov_coco/rkd_r50_fpn_d2_1x"
