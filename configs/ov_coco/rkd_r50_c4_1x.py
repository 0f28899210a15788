"""RKD on OV-COCO with RKD's recipe (stage 2): R50-C4, 1x, from RKD's base model.

hanoonaR/object-centric-ovd ``configs/coco/COCO_OVD_Base_RKD.yaml`` on
``Base-OVD-RCNN-C4.yaml`` (docs/recipes.md): the detector of ``rkd_base_r50_c4_1x.py``,
initialised from its trained weights (``MODEL.WEIGHTS: saved_models/coco_ovd_base.pth``;
train that config first), trained another 90k iterations with RKD's objective added: region
L1 + inter-embedding relationship matching between the detector's and CLIP's embeddings of
the top-5 class-agnostic proposals per image (``NUM_DISTIL_PROP: 5``), weights 0.15 and 0.15
times ``rkd_temperature`` 100 (``DISTIL_L1_LOSS_WEIGHT``, ``IRM_LOSS_WEIGHT``; the official
objective, docs/methods.md#rkd). The proposals are RKD's selection (NMS at IoU 0.5 with the
"+1" convention, top 5, one 1.0x CLIP ViT-B/32 crop each): store
``ov_coco_train_base_vitb32_rkd5`` (configs/common/distill_paths.py gives the command).

Deliberate differences: RKD's proposals come from MAVL (a multi-modal ViT not in ovdet): the
store's command takes the base model's RPN proposals, or MAVL's with ``--proposals``; pseudo
image-level supervision (PIS) and the weight-transfer function are not implemented (PIS needs
pseudo-labels); box regression as in ``rkd_base_r50_c4_1x.py``.

Published (object-centric-ovd README, ``COCO_OVD_Base_RKD``): AP50 novel 21.2, base 54.7, all
45.9. Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.rkd import RKD_COCO_IRM, RKD_COCO_L1, rkd_distiller

from ..common.distill_paths import OV_COCO_STORE_RKD
from .rkd_base_r50_c4_1x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [
    rkd_distiller(official_l1_weight=RKD_COCO_L1, official_irm_weight=RKD_COCO_IRM, max_regions=5)
]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_COCO_STORE_RKD
dataloader.train.mapper.missing = "empty"
# stage 2 starts from the whole base model (a detector checkpoint loads whole)
train.init_checkpoint = "./output/ov_coco/rkd_base_r50_c4_1x/model_final.pth"
train.init_partial = None
train.output_dir = "./output/ov_coco/rkd_r50_c4_1x"
