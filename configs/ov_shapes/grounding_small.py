"""Grounding R-CNN on OV-Shapes: GLIP-style fusion (K=2) and region-word scores, small CPU model.

ViLD-text's OV-Shapes setup (configs/ov_shapes/vild_text_small.py: data, schedule, the same
small Mask R-CNN) with the text-embedding classifier replaced by the grounding detector
(ovdet.methods.grounding, docs/grounding.md): train on base boxes with prompts of the base
class names, test with every class name (base + novel) in the vocabulary.

Text encoder: the benchmark's CLIP teacher text tower, read token by token
(``OpenCLIPTokenEncoder``: each class name is read as "a {name}.", one of the teacher's caption
templates, and gives its word states and its end-of-text state, whose projection is within
cosine 0.9998 of the prompt-ensemble embedding ViLD-text's classifier uses), frozen.

Fields to set beyond ViLD-text's (``key=value`` overrides or ``cfg.ov_shapes.*``):
    ov_shapes.teacher   the teacher checkpoint ``teacher.pt`` (``teacher.json`` beside it),
                        e.g. ``<bench out>/seed0/teacher/teacher.pt``; ``ovdet bench ov-shapes``
                        sets it to the seed's teacher.
"""

from detectron2.config import LazyCall as L

from ovdet.data.synthetic import ov_shapes_class_names
from ovdet.methods.grounding import grounding_model, teacher_token_encoder

from .vild_text_small import dataloader, lr_multiplier, optimizer, ov_shapes, train
from .vild_text_small import model as _ov_model

ov_shapes.teacher = "???"  # required: teacher.pt (with teacher.json beside it)

model = grounding_model(
    _ov_model,
    # each name read as "a {name}." (a caption template of the teacher: bare names are out of
    # its training distribution and nearly parallel; docs/methods.md#grounding-r-cnn)
    token_encoder=L(teacher_token_encoder)(checkpoint="${ov_shapes.teacher}", template="a {}."),
    train_vocabulary=L(ov_shapes_class_names)(root="${ov_shapes.root}", which="base"),
    vocabulary=L(ov_shapes_class_names)(root="${ov_shapes.root}", which="all"),
    # the teacher's text tower is 128 wide: the detector's tokens keep that width
    text_dim=128,
    embed_dim=128,
    fusion_layers=2,
    fusion_embed_dim=128,
    fusion_heads=4,
    fusion_ffn_dim=256,
)

train.output_dir = "./output/ov_shapes/grounding_small"
