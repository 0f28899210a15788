"""HierKD (Ma et al., CVPR 2022): hierarchical visual-language knowledge distillation.

Two levels: instance (ViLD-image's region L1, ``ovdet.methods.vild``) and global (an image
embedding pooled from the FPN features, contrasted with the teacher's text embedding of one
caption per image, symmetric InfoNCE over the batch). The paper targets a one-stage
detector; ovdet applies both levels to its two-stage detector (docs/methods.md#hierkd).
Here: the global objective (:class:`HierKDGlobalDistillation`) and its config helper
(:func:`hierkd_distiller`); the caption machinery is
``ovdet.modeling.distill.CaptionDistiller``.
"""

from ovdet.methods.registry import Method, register_method

from .config import HIERKD_GLOBAL_WEIGHT, HIERKD_TEMPERATURE, hierkd_distiller
from .loss import HierKDGlobalDistillation

__all__ = [
    "HIERKD_GLOBAL_WEIGHT",
    "HIERKD_TEMPERATURE",
    "HierKDGlobalDistillation",
    "hierkd_distiller",
]

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
            "ov_coco": "ov_coco/hierkd_r50_fpn_1x.py",
            "ov_lvis": "ov_lvis/hierkd_r50_fpn_mask_4x.py",
            "ov_shapes": "ov_shapes/hierkd_small.py",
        },
        losses=("loss_vild_image", "loss_hierkd_global"),
        needs=frozenset({"region_targets", "captions"}),
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
            "ov_coco": "ov_coco/rkd_hierkd_r50_fpn_1x.py",
            "ov_shapes": "ov_shapes/rkd_hierkd_small.py",
        },
        losses=("loss_rkd_l1", "loss_rkd_irm", "loss_hierkd_global"),
        needs=frozenset({"region_targets", "captions"}),
    )
)
