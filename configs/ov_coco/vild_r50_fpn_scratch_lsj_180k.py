"""ViLD (ViLD-text + ViLD-image distillation) on OV-COCO with ViLD's recipe (R50-FPN from
scratch, SyncBN, large-scale jitter at 1024, batch 256, 180k iterations; see
``vild_text_r50_fpn_scratch_lsj_180k.py`` for what is ViLD's LVIS recipe applied to COCO).

L = L_text + 0.5 * L_image on up to 300 proposals per image of the ViLD-text RPN, CLIP
ViT-B/32 targets from 1.0x + 1.5x crops (store ``ov_coco_train_base_vitb32_vild300``;
configs/common/distill_paths.py). Published: ViLD (ResNet-50) novel AP50 27.6 on OV-COCO (the
paper; docs/recipes.md names the source). Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.vild import vild_distiller

from ..common.distill_paths import OV_COCO_STORE_VILD
from .vild_text_r50_fpn_scratch_lsj_180k import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.distillers = [vild_distiller(weight=0.5, max_regions=300)]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_COCO_STORE_VILD
dataloader.train.mapper.missing = "empty"
train.output_dir = "./output/ov_coco/vild_r50_fpn_scratch_lsj_180k"
