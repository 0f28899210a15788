"""RKD on OV-LVIS with RKD's recipe (stage 2): Mask R-CNN R50-FPN, 1x, from RKD's base model.

hanoonaR/object-centric-ovd ``configs/lvis/LVIS_OVD_Base_RKD.yaml`` on
``mask_rcnn_R50FPN_CLIP_sigmoid.yaml`` (docs/recipes.md): the detector of
``rkd_base_r50_fpn_mask_1x.py``, initialised from its trained weights (train that config first),
trained another 90k iterations with RKD's objective (docs/methods.md#rkd): region L1 weight 0.25
and relationship matching weight 0.13, both times ``rkd_temperature`` 100, on the top-5
proposals per image of RKD's selection (store ``ov_lvis_train_base_vitb32_rkd5``: NMS at IoU 0.5
with the "+1" convention, top 5, one 1.0x crop).

Deliberate differences: as ``ov_coco/rkd_r50_c4_1x.py`` (MAVL proposals, no PIS and no weight
transfer). Published (object-centric-ovd README, ``LVIS_OVD_Base_RKD``): mask APr 15.2, APc
20.2, APf 27.3, AP 22.1. Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.rkd import RKD_LVIS_IRM, RKD_LVIS_L1, rkd_distiller

from ..common.distill_paths import OV_LVIS_STORE_RKD
from .rkd_base_r50_fpn_mask_1x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [
    rkd_distiller(official_l1_weight=RKD_LVIS_L1, official_irm_weight=RKD_LVIS_IRM, max_regions=5)
]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_LVIS_STORE_RKD
dataloader.train.mapper.missing = "empty"
train.init_checkpoint = "./output/ov_lvis/rkd_base_r50_fpn_mask_1x/model_final.pth"
train.init_partial = None
train.output_dir = "./output/ov_lvis/rkd_r50_fpn_mask_1x"
