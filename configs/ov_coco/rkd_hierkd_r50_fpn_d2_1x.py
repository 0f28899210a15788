"""RKD + HierKD global on OV-COCO, R50-FPN, detectron2's standard 1x (a combination of
objectives, ovdet's d2 variant; ``rkd_hierkd_r50_fpn_ss_1x.py`` trains it with HierKD's recipe).

Trusted input: executed Python.
"""

from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.rkd import rkd_distiller

from .hierkd_r50_fpn_d2_1x import (
    caption_encoder,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.distillers = [rkd_distiller(), hierkd_distiller(caption_encoder)]
train.output_dir = "./output/ov_coco/rkd_hierkd_r50_fpn_d2_1x"
