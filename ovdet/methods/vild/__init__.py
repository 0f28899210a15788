"""ViLD (Gu et al., ICLR 2022): ViLD-text plus ViLD-image distillation into one head.

ViLD-image is an L1 loss between the detector's region embeddings and the teacher's (CLIP)
embeddings of the same proposals (crops at 1.0x and 1.5x), added to ViLD-text's
classification loss with weight 0.5 (docs/methods.md#vild-image-and-vild). The proposals
(top-M of an RPN trained on base boxes) include unannotated novel objects: this is where
knowledge of novel classes enters. Here: the objective (:class:`ViLDImageDistillation`) and
the config helper (:func:`vild_distiller`); the region machinery is
``ovdet.modeling.distill.RegionDistiller``.
"""

from ovdet.methods.registry import Method, register_method

from .config import VILD_IMAGE_WEIGHT, vild_distiller
from .loss import ViLDImageDistillation

__all__ = ["VILD_IMAGE_WEIGHT", "ViLDImageDistillation", "vild_distiller"]

register_method(
    Method(
        name="vild",
        title="ViLD",
        summary="ViLD-text + L1 distillation of teacher region embeddings (weight 0.5)",
        source="Gu et al., Open-vocabulary Object Detection via Vision and Language Knowledge "
        "Distillation, ICLR 2022",
        docs="docs/methods.md#vild-image-and-vild",
        configs={
            "ov_coco": "ov_coco/vild_r50_fpn_scratch_lsj_180k.py",
            "ov_lvis": "ov_lvis/vild_r50_fpn_mask_scratch_lsj_180k.py",
            "ov_shapes": "ov_shapes/vild_small.py",
        },
        variants={
            "ov_coco": {"d2_1x": "ov_coco/vild_r50_fpn_d2_1x.py"},
            "ov_lvis": {"d2_4x": "ov_lvis/vild_r50_fpn_mask_d2_4x.py"},
        },
        losses=("loss_vild_image",),
        needs=frozenset({"region_targets"}),
    )
)
