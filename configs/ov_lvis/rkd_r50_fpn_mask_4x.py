"""RKD on OV-LVIS, Mask R-CNN R50-FPN, 4x: region-based L1 + inter-embedding relationship matching.

On the top-5 class-agnostic proposals per image (METHODS.md §3; weights in
configs/common/models/distill.py). Pseudo image-level supervision (PIS) and the
weight-transfer function of the paper are not part of this config: PIS needs pseudo-labels
from a teacher (``ovdet.pseudo``). Trusted input: executed Python.
"""

from ..common.models.distill import rkd_distiller
from .vild_r50_fpn_mask_4x import dataloader, lr_multiplier, model, optimizer, train

model.distillers = [rkd_distiller]
train.output_dir = "./output/ov_lvis/rkd_r50_fpn_mask_4x"
# official LVIS weights (0.25 L1, 0.13 IRM, times rkd_temperature 100; L1 per element -> / D)
model.distillers[0].objective.l1_weight = 0.25 * 100 / 512
