"""RKD + HierKD global on OV-COCO with HierKD's recipe (R50-FPN, single-scale 800, SGD lr 0.01
with gradient clipping, 12 epochs; ``hierkd_r50_fpn_ss_1x.py``).

A combination, not a published recipe: HierKD's instance level is replaced by RKD's objective
(hanoonaR/object-centric-ovd ``COCO_OVD_Base_RKD.yaml``: top-5 proposals of RKD's selection from
store ``ov_coco_train_base_vitb32_rkd5``, L1 and IRM weights 0.15 x 100); the detector, schedule
and global level are HierKD's recipe, the closest official project for the caption term.
Published: none. Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.rkd import RKD_COCO_IRM, RKD_COCO_L1, rkd_distiller

from ..common.distill_paths import OV_COCO_STORE_RKD
from .hierkd_r50_fpn_ss_1x import (
    caption_encoder,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.distillers = [
    rkd_distiller(official_l1_weight=RKD_COCO_L1, official_irm_weight=RKD_COCO_IRM, max_regions=5),
    hierkd_distiller(caption_encoder, weight=1.0, temperature=0.1),
]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_COCO_STORE_RKD
dataloader.train.mapper.missing = "empty"
train.output_dir = "./output/ov_coco/rkd_hierkd_r50_fpn_ss_1x"
