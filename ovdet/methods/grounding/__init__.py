"""Grounding R-CNN: GLIP-style deep fusion and region-word alignment in a two-stage detector.

The detector (docs/methods.md#grounding-r-cnn, docs/grounding.md): detectron2's R-CNN whose
FPN features and prompt tokens are fused by K bidirectional cross-attention layers before the
RPN (:mod:`.fusion`), whose class logits are region-token alignment scores trained with a
focal loss on positive maps (:mod:`.region_word`, :mod:`.prompts`), and whose vocabulary of
any size is split into prompts that share one backbone pass and run in batches of chunks
(:mod:`.meta_arch`, :mod:`.chunks`). Token text encoders live in ``ovdet.text``
(``HFTokenEncoder``, ``OpenCLIPTokenEncoder``).

Registered methods: ``grounding`` (K = 2 fusion layers), ``grounding_nofusion`` (K = 0,
the ablation), ``grounding_eot`` (K = 2, each class read from its end-of-text token),
``grounding_eot_nofusion`` (its K = 0 ablation), ``grounding_eot_softmax`` (its loss
ablation: softmax cross-entropy over the tokens and a background instead of focal loss), and
``grounding_eot_vildhead`` / ``grounding_eot_vildhead_nofusion`` (ViLD-text's classification
rule read from the tokens, K = 2 / K = 0: the head ablations that separate the fusion from the
head).
"""

from ovdet.methods.grounding.chunks import merge_detections
from ovdet.methods.grounding.config import (
    count_names,
    grounding_model,
    prepare_ov_shapes,
    teacher_token_encoder,
)
from ovdet.methods.grounding.fusion import BiAttentionLayer, FeatureTextFusion
from ovdet.methods.grounding.meta_arch import GroundingRCNN
from ovdet.methods.grounding.prompts import (
    aggregate_phrase_scores,
    last_tokens,
    positive_map,
    split_into_prompts,
)
from ovdet.methods.grounding.region_word import RegionWordOutputLayers, TextContext
from ovdet.methods.grounding.roi_heads import GroundingROIHeads
from ovdet.methods.registry import Method, register_method

__all__ = [
    "BiAttentionLayer",
    "FeatureTextFusion",
    "GroundingRCNN",
    "GroundingROIHeads",
    "RegionWordOutputLayers",
    "TextContext",
    "aggregate_phrase_scores",
    "count_names",
    "grounding_model",
    "last_tokens",
    "merge_detections",
    "positive_map",
    "prepare_ov_shapes",
    "split_into_prompts",
    "teacher_token_encoder",
]

_SOURCE = (
    "ovdet, after Li et al., Grounded Language-Image Pre-training (GLIP), CVPR 2022 "
    "(deep fusion, region-word alignment) in a two-stage detectron2 detector"
)


def _register(name: str, title: str, summary: str, configs: dict[str, str]) -> None:
    register_method(
        Method(
            name=name,
            title=title,
            summary=summary,
            source=_SOURCE,
            docs="docs/methods.md#grounding-r-cnn",
            configs=configs,
            prepare=prepare_ov_shapes,
        )
    )


_register(
    "grounding",
    "Grounding R-CNN",
    "GLIP-style image-text fusion (K=2) before the RPN, region-word scores",
    {
        "ov_coco": "ov_coco/grounding_rcnn_r50_fpn_1x.py",
        "ov_lvis": "ov_lvis/grounding_rcnn_r50_fpn_mask_4x.py",
        "ov_shapes": "ov_shapes/grounding_small.py",
    },
)
# OV-Shapes variants and ablations (docs/grounding.md): name, title, summary
for _name, _title, _summary in (
    (
        "grounding_nofusion",
        "Grounding R-CNN, no fusion",
        "the fusion ablation (K=0): region-word scores on unfused features",
    ),
    (
        "grounding_eot",
        "Grounding R-CNN, EOT readout",
        "K=2 fusion; each class is one token, its name's end-of-text (sentence) state",
    ),
    (
        "grounding_eot_nofusion",
        "Grounding R-CNN, EOT readout, no fusion",
        "the fusion ablation (K=0) of the EOT readout",
    ),
    (
        "grounding_eot_softmax",
        "Grounding R-CNN, EOT readout, softmax loss",
        "the loss ablation of the EOT readout: softmax cross-entropy over the prompt's tokens "
        "and a background (ViLD-text's rule) instead of the focal loss",
    ),
    (
        "grounding_eot_vildhead",
        "Grounding R-CNN, EOT readout, ViLD-text's head",
        "K=2 fusion; softmax over the class tokens, fixed temperature 0.01, no bias, frozen "
        "text projections: only the fusion differs from ViLD-text",
    ),
    (
        "grounding_eot_vildhead_nofusion",
        "Grounding R-CNN, EOT readout, ViLD-text's head, no fusion",
        "K=0 of grounding_eot_vildhead: ViLD-text's classifier on the token path",
    ),
):
    _register(_name, _title, _summary, {"ov_shapes": f"ov_shapes/{_name}_small.py"})
