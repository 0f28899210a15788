"""ViLD (ViLD-text + ViLD-image distillation) on OV-LVIS, Mask R-CNN R50-FPN, detectron2's 4x.

ovdet's detectron2-standard variant (ViLD's own recipe:
``vild_r50_fpn_mask_scratch_lsj_180k.py``; docs/recipes.md). L = L_text + 0.5 * L_image,
L_image = mean over the stored top-32 RPN proposals of ||e_r - v_r||_1 with v_r =
normalise(CLIP(crop 1.0x) + CLIP(crop 1.5x)) (docs/methods.md#vild-image-and-vild).
Teacher targets are read offline from a region store (configs/common/distill_paths.py gives
the ``ovdet extract-regions`` command that writes it); missing images are counted, logged and
refused past 1%. Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.vild import vild_distiller

from ..common.distill_paths import OV_LVIS_STORE_TOP32
from .vild_text_r50_fpn_mask_d2_4x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [vild_distiller()]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_LVIS_STORE_TOP32
dataloader.train.mapper.missing = "empty"
train.output_dir = "./output/ov_lvis/vild_r50_fpn_mask_d2_4x"
