"""HierKD (Ma et al., CVPR 2022): hierarchical visual-language knowledge distillation.

Two levels: instance (the official L2 x 0.05 between the embeddings of proposals matching a
ground-truth box and an online teacher's, :class:`HierKDInstanceDistiller`; or, as the
OV-Shapes configs do, ViLD-image's region L1 on stored proposals, ``ovdet.methods.vild``) and
global (an image embedding pooled from the FPN features, contrasted with the teacher's text
embedding of one caption per image, symmetric InfoNCE over the global batch,
:class:`HierKDGlobalDistillation`). The paper targets a one-stage detector; ovdet applies both
levels to its two-stage detector (docs/methods.md#hierkd). Config helpers:
:func:`hierkd_distiller` (global) and :func:`hierkd_instance_distiller` (instance); the
caption machinery is ``ovdet.modeling.distill.CaptionDistiller``.
"""

from ovdet.methods.registry import Method, register_method

from .config import (
    HIERKD_GLOBAL_WEIGHT,
    HIERKD_TEMPERATURE,
    hierkd_distiller,
    hierkd_instance_distiller,
)
from .instance import (
    HIERKD_INSTANCE_IOU,
    HIERKD_INSTANCE_WEIGHT,
    HierKDInstanceDistillation,
    HierKDInstanceDistiller,
)
from .loss import HIERKD_REDUCTIONS, HIERKD_SCALE_PARAMS, HierKDGlobalDistillation

__all__ = [
    "HIERKD_GLOBAL_WEIGHT",
    "HIERKD_INSTANCE_IOU",
    "HIERKD_INSTANCE_WEIGHT",
    "HIERKD_REDUCTIONS",
    "HIERKD_SCALE_PARAMS",
    "HIERKD_TEMPERATURE",
    "HierKDGlobalDistillation",
    "HierKDInstanceDistillation",
    "HierKDInstanceDistiller",
    "hierkd_distiller",
    "hierkd_instance_distiller",
]

# configs with HierKD's official instance level (online teacher)
_OFFICIAL_INSTANCE = ("ov_coco/hierkd_r50_fpn_ss_1x.py", "ov_lvis/hierkd_r50_fpn_mask_1x.py")

_SOURCE = (
    "Ma et al., Open-Vocabulary One-Stage Detection with Hierarchical Visual-Language "
    "Knowledge Distillation, CVPR 2022"
)

register_method(
    Method(
        name="hierkd",
        title="HierKD",
        summary="instance-level L1 + global image-caption InfoNCE",
        source=_SOURCE,
        docs="docs/methods.md#hierkd",
        configs={
            "ov_coco": "ov_coco/hierkd_r50_fpn_ss_1x.py",
            "ov_lvis": "ov_lvis/hierkd_r50_fpn_mask_1x.py",
            "ov_shapes": "ov_shapes/hierkd_small.py",
        },
        variants={
            "ov_coco": {"d2_1x": "ov_coco/hierkd_r50_fpn_d2_1x.py"},
            "ov_lvis": {"d2_4x": "ov_lvis/hierkd_r50_fpn_mask_d2_4x.py"},
        },
        # OV-Shapes and the d2 variants: ViLD-image's L1 on stored proposals as the instance
        # level; the official recipes: the official L2 against an online teacher
        losses=("loss_vild_image", "loss_hierkd_global"),
        needs=frozenset({"region_targets", "captions"}),
        config_losses={
            path: ("loss_hierkd_instance", "loss_hierkd_global") for path in _OFFICIAL_INSTANCE
        },
        config_needs={
            path: frozenset({"online_teacher", "captions"}) for path in _OFFICIAL_INSTANCE
        },
    )
)

register_method(
    Method(
        name="rkd_hierkd",
        title="RKD + HierKD",
        summary="RKD's region objective + HierKD's global caption InfoNCE (a combination)",
        source="ovdet (a combination of RKD and " + _SOURCE + ")",
        docs="docs/methods.md#hierkd",
        configs={
            "ov_coco": "ov_coco/rkd_hierkd_r50_fpn_ss_1x.py",
            "ov_shapes": "ov_shapes/rkd_hierkd_small.py",
        },
        variants={"ov_coco": {"d2_1x": "ov_coco/rkd_hierkd_r50_fpn_d2_1x.py"}},
        losses=("loss_rkd_l1", "loss_rkd_irm", "loss_hierkd_global"),
        needs=frozenset({"region_targets", "captions"}),
    )
)
