"""RKD (Bangalath et al., NeurIPS 2022): region-based knowledge distillation.

Region L1 between the detector's and the teacher's embeddings of the top-5 class-agnostic
proposals per image, plus inter-embedding relationship matching (IRM) between their
similarity matrices (docs/methods.md#rkd). Here: the official objective
(:class:`RKDDistillation`), ovdet's earlier variant that the OV-Shapes configs keep
(:class:`RKDNormalisedDistillation`) and the config helper (:func:`rkd_distiller`). Pseudo
image-level supervision (PIS) and the weight-transfer function of the paper are not part of
it (PIS needs pseudo-labels).
"""

from ovdet.methods.registry import Method, register_method

from .config import (
    RKD_COCO_IRM,
    RKD_COCO_L1,
    RKD_FORMS,
    RKD_LVIS_IRM,
    RKD_LVIS_L1,
    RKD_REGIONS_PER_IMAGE,
    RKD_TEMPERATURE,
    rkd_distiller,
    rkd_l1_weight,
)
from .loss import RKDDistillation, RKDNormalisedDistillation

__all__ = [
    "RKDDistillation",
    "RKDNormalisedDistillation",
    "RKD_COCO_IRM",
    "RKD_COCO_L1",
    "RKD_FORMS",
    "RKD_LVIS_IRM",
    "RKD_LVIS_L1",
    "RKD_REGIONS_PER_IMAGE",
    "RKD_TEMPERATURE",
    "rkd_distiller",
    "rkd_l1_weight",
]

register_method(
    Method(
        name="rkd",
        title="RKD",
        summary="region L1 + inter-embedding relationship matching on the top-5 proposals",
        source="Bangalath et al., Bridging the Gap between Object and Image-level "
        "Representations for Open-Vocabulary Detection, NeurIPS 2022",
        docs="docs/methods.md#rkd",
        configs={
            "ov_coco": "ov_coco/rkd_r50_c4_1x.py",
            "ov_lvis": "ov_lvis/rkd_r50_fpn_mask_1x.py",
            "ov_shapes": "ov_shapes/rkd_small.py",
        },
        # RKD trains a base model first, then adds its objective (two stages)
        base_configs={
            "ov_coco": "ov_coco/rkd_base_r50_c4_1x.py",
            "ov_lvis": "ov_lvis/rkd_base_r50_fpn_mask_1x.py",
        },
        variants={
            "ov_coco": {"d2_1x": "ov_coco/rkd_r50_fpn_d2_1x.py"},
            "ov_lvis": {"d2_4x": "ov_lvis/rkd_r50_fpn_mask_d2_4x.py"},
        },
        losses=("loss_rkd_l1", "loss_rkd_irm"),
        needs=frozenset({"region_targets"}),
    )
)
