"""ViLD-ensemble on OV-LVIS with ViLD's recipe (R50-FPN from scratch, SyncBN, large-scale
jitter at 1024, batch 256, 180k iterations).

tensorflow/tpu ``projects/vild/configs/vild_ensemble_resnet.yaml`` (identical to
``vild_resnet.yaml`` except ``visual_feature_distill: double_branch``): a second 4conv+2fc
box head and projection (the image head) learns only from ViLD-image distillation (weight
0.5, 300 stored proposals per image); the text head keeps ViLD-text's masked softmax. At test
(``postprocess_ops.py::GenericDetectionGenerator``): p_text = softmax over the 1203 classes
and the background (background dropped after), p_image = softmax over the 1203 classes of
cos(e_image, t_c) / 0.01, and p = (p_text^2 p_image)^(1/3) for base, (p_text p_image^2)^(1/3)
for rare (novel) classes: λ = 2/3 (docs/methods.md#vild-ensemble). Both heads' probabilities
are softmaxes, as in ViLD.

Published (tensorflow/tpu ``projects/vild/README.md``, ViLD-ensemble ResNet-50, distillation
weight 0.5): mask APr 18.0, APc 24.7, APf 30.6, AP 25.9. Trusted input: executed Python.
"""

from ovdet.data.builtin_meta import lvis_categories
from ovdet.methods.vild_ensemble import vild_ensemble

from .vild_r50_fpn_mask_scratch_lsj_180k import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.roi_heads = vild_ensemble(
    model.roi_heads, [c["name"] for c in lvis_categories() if c["frequency"] != "r"]
)
model.vocabulary = [c["name"] for c in lvis_categories()]
train.output_dir = "./output/ov_lvis/vild_ensemble_r50_fpn_mask_scratch_lsj_180k"
