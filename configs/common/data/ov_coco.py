"""OV-COCO dataloaders: train on the 48 base classes, evaluate on 65 (17 novel), box AP50."""

from .coco_format import dataloader

dataloader.train.dataset.names = "ov_coco_train_base"
dataloader.test.dataset.names = "ov_coco_val"
