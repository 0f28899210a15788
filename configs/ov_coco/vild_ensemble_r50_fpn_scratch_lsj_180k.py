"""ViLD-ensemble on OV-COCO with ViLD's recipe (R50-FPN from scratch, SyncBN, large-scale
jitter at 1024, batch 256, 180k iterations; ViLD's LVIS recipe applied to COCO, see
``vild_text_r50_fpn_scratch_lsj_180k.py``).

A second 4conv+2fc box head and projection (the image head) learns only from ViLD-image
distillation; at test p = p_text^(2/3) p_image^(1/3) for base and p_text^(1/3) p_image^(2/3)
for novel classes, both softmaxes (docs/methods.md#vild-ensemble). Trusted input: executed
Python.
"""

from ovdet.data.builtin_meta import OV_COCO_BASE_NAMES, OV_COCO_NAMES
from ovdet.methods.vild_ensemble import vild_ensemble

from .vild_r50_fpn_scratch_lsj_180k import dataloader, lr_multiplier, model, optimizer, train

model.roi_heads = vild_ensemble(model.roi_heads, OV_COCO_BASE_NAMES)
# names of the test vocabulary rows (the 65 OV-COCO classes) decide base vs novel
model.vocabulary = list(OV_COCO_NAMES)
train.output_dir = "./output/ov_coco/vild_ensemble_r50_fpn_scratch_lsj_180k"
