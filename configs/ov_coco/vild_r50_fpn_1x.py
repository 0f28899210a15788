"""ViLD (ViLD-text + ViLD-image distillation) on OV-COCO, R50-FPN, 1x.

L = L_text + 0.5 * L_image, L_image = mean over the stored top-32 RPN proposals of
||e_r - v_r||_1 with v_r = normalise(CLIP(crop 1.0x) + CLIP(crop 1.5x))
(docs/methods.md#vild-image-and-vild).
Teacher targets are read offline from a region store (see configs/common/distill_paths.py
for the ``ovdet extract-regions`` command that writes it). Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.vild import vild_distiller

from ..common.distill_paths import OV_COCO_STORE
from .vild_text_r50_fpn_1x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [vild_distiller()]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_COCO_STORE
dataloader.train.mapper.missing = "empty"
train.output_dir = "./output/ov_coco/vild_r50_fpn_1x"
