"""Oracle for OV-Shapes: ViLD-text with boxes of EVERY class (the ceiling of ``vild_text_small``).

Same model, schedule and test set as ``vild_text_small.py``; trains on
``<prefix>_train_all`` with the training vocabulary = text embeddings of all classes, so
novel classes get box supervision too.
"""

from detectron2.config import LazyCall as L

from ovdet.data.synthetic import ov_shapes_class_names, ov_shapes_dataset
from ovdet.text import load_class_embeddings

from .vild_text_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

dataloader.train.dataset.names = L(ov_shapes_dataset)(
    root="${ov_shapes.root}", split="train_all", prefix="${ov_shapes.prefix}"
)
model.roi_heads.box_predictor.classifier.train_embeddings = L(load_class_embeddings)(
    path="${ov_shapes.embeddings}",
    select=L(ov_shapes_class_names)(root="${ov_shapes.root}", which="all"),
)
train.output_dir = "./output/ov_shapes/oracle_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
