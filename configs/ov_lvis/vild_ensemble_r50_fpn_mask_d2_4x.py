"""ViLD-ensemble on OV-LVIS, Mask R-CNN R50-FPN, detectron2's 4x (λ = 2/3; rare classes are
novel); ovdet's d2 variant (ViLD's recipe: ``vild_ensemble_r50_fpn_mask_scratch_lsj_180k.py``).

The text head inherits the federated sigmoid loss of ``vild_text_r50_fpn_mask_d2_4x.py``, so
its per-class probability is a sigmoid while the image head's is ViLD's softmax over the
classes: the geometric mix p_text^λ p_image^(1-λ) then combines two differently normalised
scores, and λ = 2/3 is not tuned for that (ViLD's recipe keeps the softmax text head, with
the rare classes masked in training). Trusted input: executed Python.
"""

from ovdet.data.builtin_meta import lvis_categories
from ovdet.methods.vild_ensemble import vild_ensemble

from .vild_r50_fpn_mask_d2_4x import dataloader, lr_multiplier, model, optimizer, train

_names = [c["name"] for c in lvis_categories()]
model.roi_heads = vild_ensemble(
    model.roi_heads, [c["name"] for c in lvis_categories() if c["frequency"] != "r"]
)
model.vocabulary = _names
train.output_dir = "./output/ov_lvis/vild_ensemble_r50_fpn_mask_d2_4x"
