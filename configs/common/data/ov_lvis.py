"""OV-LVIS dataloaders: train on LVIS v1 without rare annotations, evaluate mask AP / APr."""

from detectron2.config import LazyCall as L

from ovdet.evaluation.lvis import LVISOVEvaluator

from .coco_format import dataloader

dataloader.train.dataset.names = "ov_lvis_train_base"
dataloader.train.mapper.use_instance_mask = True
dataloader.test.dataset.names = "ov_lvis_val"
dataloader.evaluator = L(LVISOVEvaluator)(
    dataset_name="${..test.dataset.names}",
    tasks=("bbox", "segm"),
    max_dets_per_image=300,
)
