"""ViLD-ensemble on OV-LVIS, Mask R-CNN R50-FPN, 4x (λ = 2/3; rare classes are novel).

Trusted input: executed Python.
"""

from ovdet.data.builtin_meta import lvis_categories
from ovdet.methods.vild_ensemble import vild_ensemble

from .vild_r50_fpn_mask_4x import dataloader, lr_multiplier, model, optimizer, train

_names = [c["name"] for c in lvis_categories()]
model.roi_heads = vild_ensemble(
    model.roi_heads, [c["name"] for c in lvis_categories() if c["frequency"] != "r"]
)
model.vocabulary = _names
train.output_dir = "./output/ov_lvis/vild_ensemble_r50_fpn_mask_4x"
