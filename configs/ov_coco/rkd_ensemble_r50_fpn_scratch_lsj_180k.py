"""ViLD-ensemble heads trained with the RKD objective on OV-COCO, with ViLD-ensemble's recipe
(R50-FPN from scratch, SyncBN, large-scale jitter at 1024, batch 256, 180k iterations).

A combination, not a published recipe (docs/methods.md#rkd-ensemble): no paper gives one, so
this config takes the recipe of the closest official project for the detector, ViLD-ensemble's
(``vild_ensemble_r50_fpn_scratch_lsj_180k.py``, tensorflow/tpu ``vild_ensemble_resnet.yaml``:
the heads and the inference rule are ViLD-ensemble's), and RKD's for the distillation
(hanoonaR/object-centric-ovd ``COCO_OVD_Base_RKD.yaml``: top-5 proposals of RKD's selection,
store ``ov_coco_train_base_vitb32_rkd5``, L1 and IRM weights 0.15 x 100). Published: none.
Trusted input: executed Python.
"""

from ovdet.methods.rkd import RKD_COCO_IRM, RKD_COCO_L1, rkd_distiller

from ..common.distill_paths import OV_COCO_STORE_RKD
from .vild_ensemble_r50_fpn_scratch_lsj_180k import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.distillers = [
    rkd_distiller(official_l1_weight=RKD_COCO_L1, official_irm_weight=RKD_COCO_IRM, max_regions=5)
]
dataloader.train.mapper.store = OV_COCO_STORE_RKD
train.output_dir = "./output/ov_coco/rkd_ensemble_r50_fpn_scratch_lsj_180k"
