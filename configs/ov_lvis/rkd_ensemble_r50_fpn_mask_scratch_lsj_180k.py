"""ViLD-ensemble heads trained with the RKD objective on OV-LVIS, with ViLD-ensemble's recipe
(Mask R-CNN R50-FPN from scratch, SyncBN, large-scale jitter at 1024, batch 256, 180k
iterations).

A combination, not a published recipe (docs/methods.md#rkd-ensemble): the detector, the
masked-softmax text head and the inference rule follow ViLD-ensemble's official recipe
(``vild_ensemble_r50_fpn_mask_scratch_lsj_180k.py``), the distillation RKD's LVIS settings
(hanoonaR/object-centric-ovd ``LVIS_OVD_Base_RKD.yaml``: top-5 proposals of RKD's selection,
store ``ov_lvis_train_base_vitb32_rkd5``, L1 weight 0.25 and IRM weight 0.13, x 100).
Published: none. Trusted input: executed Python.
"""

from ovdet.methods.rkd import RKD_LVIS_IRM, RKD_LVIS_L1, rkd_distiller

from ..common.distill_paths import OV_LVIS_STORE_RKD
from .vild_ensemble_r50_fpn_mask_scratch_lsj_180k import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.distillers = [
    rkd_distiller(official_l1_weight=RKD_LVIS_L1, official_irm_weight=RKD_LVIS_IRM, max_regions=5)
]
dataloader.train.mapper.store = OV_LVIS_STORE_RKD
train.output_dir = "./output/ov_lvis/rkd_ensemble_r50_fpn_mask_scratch_lsj_180k"
