"""ViLD-ensemble on OV-COCO, R50-FPN, detectron2's standard 1x: separate text and image heads
(each its own 2fc box head on the shared pooled features).

ovdet's detectron2-standard variant (ViLD's own recipe:
``vild_ensemble_r50_fpn_scratch_lsj_180k.py``; docs/recipes.md). The text head is trained with
the ViLD-text loss, the image head only by ViLD-image distillation (top-32 stored proposals);
at test time per-class probabilities are combined as p_text^(2/3) p_image^(1/3) for base and
p_text^(1/3) p_image^(2/3) for novel classes (docs/methods.md#vild-ensemble). Trusted input:
executed Python.
"""

from ovdet.data.builtin_meta import OV_COCO_BASE_NAMES, OV_COCO_NAMES
from ovdet.methods.vild_ensemble import vild_ensemble

from .vild_r50_fpn_d2_1x import dataloader, lr_multiplier, model, optimizer, train

model.roi_heads = vild_ensemble(model.roi_heads, OV_COCO_BASE_NAMES)
# names of the test vocabulary rows (the 65 OV-COCO classes) decide base vs novel
model.vocabulary = list(OV_COCO_NAMES)
train.output_dir = "./output/ov_coco/vild_ensemble_r50_fpn_d2_1x"
