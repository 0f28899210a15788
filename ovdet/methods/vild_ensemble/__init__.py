"""ViLD-ensemble (Gu et al., ICLR 2022, section 3.4): separate text and image heads.

The text head is ViLD-text (classification loss on base boxes); the image head has its own
box head and is trained only by distilling the teacher's region embeddings; at inference
their class probabilities are mixed geometrically, weighted towards the text head for base
classes and towards the image head for novel ones (docs/methods.md#vild-ensemble).

Here: the box head (:class:`ViLDEnsembleBoxHead`), the image head and its inference rule
(:class:`ViLDEnsembleHead`, :func:`vild_ensemble_scores`), the box predictor
(:class:`OVEnsembleOutputLayers`), the ROI heads that distil into the image head
(:class:`ViLDEnsembleROIHeads`), the config helper (:func:`vild_ensemble`) and the
image-head temperature rule (:func:`set_image_temperature`). The distillation objective is
ViLD-image's (``ovdet.methods.vild``).
"""

from ovdet.methods.registry import Method, register_method
from ovdet.methods.vild.config import vild_distiller

from .box_head import ViLDEnsembleBoxHead
from .config import vild_ensemble
from .heads import ViLDEnsembleHead, vild_ensemble_scores
from .predictor import EnsembleLogits, OVEnsembleOutputLayers
from .roi_heads import ViLDEnsembleROIHeads
from .temperature import set_image_temperature, teacher_temperature

__all__ = [
    "EnsembleLogits",
    "OVEnsembleOutputLayers",
    "ViLDEnsembleBoxHead",
    "ViLDEnsembleHead",
    "ViLDEnsembleROIHeads",
    "set_image_temperature",
    "teacher_temperature",
    "vild_distiller",
    "vild_ensemble",
    "vild_ensemble_scores",
]

register_method(
    Method(
        name="vild_ensemble",
        title="ViLD-ensemble",
        summary="text head + separately distilled image head, geometric mean at test",
        source="Gu et al., Open-vocabulary Object Detection via Vision and Language Knowledge "
        "Distillation, ICLR 2022",
        docs="docs/methods.md#vild-ensemble",
        configs={
            "ov_coco": "ov_coco/vild_ensemble_r50_fpn_scratch_lsj_180k.py",
            "ov_lvis": "ov_lvis/vild_ensemble_r50_fpn_mask_scratch_lsj_180k.py",
            "ov_shapes": "ov_shapes/vild_ensemble_small.py",
        },
        variants={
            "ov_coco": {"d2_1x": "ov_coco/vild_ensemble_r50_fpn_d2_1x.py"},
            "ov_lvis": {"d2_4x": "ov_lvis/vild_ensemble_r50_fpn_mask_d2_4x.py"},
        },
        losses=("loss_vild_image",),
        ensemble=True,
        needs=frozenset({"region_targets"}),
        prepare=set_image_temperature,
    )
)
