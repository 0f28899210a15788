"""ViLD (ViLD-text + ViLD-image distillation) on OV-LVIS with ViLD's recipe (R50-FPN from
scratch, SyncBN, large-scale jitter at 1024, batch 256, 180k iterations).

``vild_text_r50_fpn_mask_scratch_lsj_180k.py`` plus ViLD-image: L = L_text + 0.5 * L_image
(``feat_distill_weight: 0.5``), L_image = mean over the distilled proposals of
||e_r - v_r||_1, with up to 300 proposals per image (``max_num_rois: 300``) of the RPN of
ViLD-text trained on base boxes, embedded by CLIP ViT-B/32 from crops at 1.0x and 1.5x
(docs/methods.md#vild-image-and-vild). Targets are read from the region store
``ov_lvis_train_base_vitb32_vild300`` (configs/common/distill_paths.py gives the ``ovdet
extract-regions`` command); the stored boxes follow the image through the jitter, crop and
flip. An image missing from the store trains without distillation, is counted and logged;
more than 1% missing stops training.

Published (tensorflow/tpu ``projects/vild/README.md``, ViLD ResNet-50, distillation weight
0.5): mask APr 16.6, APc 19.8, APf 28.2, AP 22.5. Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.vild import vild_distiller

from ..common.distill_paths import OV_LVIS_STORE_VILD
from .vild_text_r50_fpn_mask_scratch_lsj_180k import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.distillers = [vild_distiller(weight=0.5, max_regions=300)]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = OV_LVIS_STORE_VILD
dataloader.train.mapper.missing = "empty"
train.output_dir = "./output/ov_lvis/vild_r50_fpn_mask_scratch_lsj_180k"
