"""RKD-ensemble (ovdet's combination, not a published recipe): ViLD-ensemble's text and
image heads and inference rule, with the image head trained by RKD's objective (region L1
+ relationship matching on the top-5 proposals) instead of ViLD-image's L1 on every stored
proposal (docs/methods.md#rkd-ensemble). Configs combine
``ovdet.methods.vild_ensemble.vild_ensemble`` and ``ovdet.methods.rkd.rkd_distiller``.
"""

from ovdet.methods.registry import Method, register_method
from ovdet.methods.vild_ensemble import set_image_temperature

__all__: list[str] = []

register_method(
    Method(
        name="rkd_ensemble",
        title="RKD-ensemble",
        summary="ViLD-ensemble heads, image head trained with RKD (L1 + IRM, top-5 proposals)",
        source="ovdet (a combination of ViLD-ensemble and RKD)",
        docs="docs/methods.md#rkd-ensemble",
        configs={
            "ov_coco": "ov_coco/rkd_ensemble_r50_fpn_scratch_lsj_180k.py",
            "ov_lvis": "ov_lvis/rkd_ensemble_r50_fpn_mask_scratch_lsj_180k.py",
            "ov_shapes": "ov_shapes/rkd_ensemble_small.py",
        },
        variants={
            "ov_coco": {"d2_1x": "ov_coco/rkd_ensemble_r50_fpn_d2_1x.py"},
            "ov_lvis": {"d2_4x": "ov_lvis/rkd_ensemble_r50_fpn_mask_d2_4x.py"},
        },
        losses=("loss_rkd_l1", "loss_rkd_irm"),
        ensemble=True,
        needs=frozenset({"region_targets"}),
        prepare=set_image_temperature,
    )
)
