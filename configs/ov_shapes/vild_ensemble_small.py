"""ViLD-ensemble on OV-Shapes: text head (CE) + image head (distillation), each with its own
box head on the shared pooled features, combined at test
time with λ = 2/3 (base) / 1/3 (novel). Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.benchmarks.ov_shapes.data import ov_shapes_class_names

from ..common.models.distill import vild_ensemble
from .vild_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.roi_heads = vild_ensemble(model.roi_heads, [])
model.roi_heads.box_predictor.base_names = L(ov_shapes_class_names)(
    root="${ov_shapes.root}", which="base"
)
train.output_dir = "./output/ov_shapes/vild_ensemble_small"
