"""ViLD on OV-Shapes: ViLD-text + ViLD-image distillation of the CLIP teacher's region
embeddings (top-32 proposals of the seed's ViLD-text RPN, crops at 1.0x + 1.5x), weight 0.5.

``ov_shapes.teacher_store`` is the region store (``ovdet bench ov-shapes`` fills it; or
``ovdet extract-regions``). Trusted input: executed Python.
"""

from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods.vild import vild_distiller

from .vild_text_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

ov_shapes.teacher_store = "${ov_shapes.root}/teacher_regions"
model.distillers = [vild_distiller()]
dataloader.train.mapper._target_ = TeacherTargetsMapper
dataloader.train.mapper.store = "${ov_shapes.teacher_store}"
dataloader.train.mapper.missing = "empty"
train.output_dir = "./output/ov_shapes/vild_small"
