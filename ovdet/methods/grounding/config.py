"""Config helpers of the grounding detector: an OV R-CNN model config -> Grounding R-CNN."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detectron2.config import LazyCall as L

from ovdet.methods.grounding.meta_arch import GroundingRCNN
from ovdet.methods.grounding.region_word import RegionWordOutputLayers
from ovdet.methods.grounding.roi_heads import GroundingROIHeads

__all__ = ["count_names", "grounding_model", "prepare_ov_shapes", "teacher_token_encoder"]

# what GroundingRCNN takes beyond GeneralizedRCNN's arguments
_OWN = (
    "fusion_layers",
    "fusion_in_features",
    "fusion_embed_dim",
    "fusion_heads",
    "fusion_ffn_dim",
    "fusion_layer_scale",
    "fusion_attention",
    "max_train_phrases",
    "train_negatives",
    "max_test_phrases",
    "test_chunk_batch",
    "vocabulary_cache_size",
    "freeze_text_projection",
)


def count_names(names: Sequence[str]) -> int:
    """``len(names)``, as a config call (the training classes of a lazily loaded vocabulary)."""
    return len(list(names))


def grounding_model(
    ov_model: Any,
    *,
    token_encoder: Any,
    train_vocabulary: Any,
    vocabulary: Any = None,
    text_dim: int = 256,
    embed_dim: int = 256,
    aggregation: str = "mean",
    cls_loss: str = "focal",
    temperature: float = 0.1,
    learn_temperature: bool = True,
    token_bias: bool = True,
    **kwargs: Any,
) -> Any:
    """A ``L(GroundingRCNN)`` config from an ``L(OVRCNN)`` one (``configs/common/models``).

    Backbone, RPN, pooling, box head and class-agnostic mask head are kept; the text-embedding
    classifier becomes a :class:`RegionWordOutputLayers` (same box regression and test
    filtering) and the ROI heads :class:`GroundingROIHeads`.

    Args:
        ov_model: the ``model`` node of an OV R-CNN config.
        token_encoder: config node (or object) of a :class:`~ovdet.text.TokenEncoder`.
        train_vocabulary: training class names (a list or a config node giving one).
        vocabulary: inference class names (default: the training ones).
        text_dim: token width inside the detector; embed_dim: region-token space width.
        aggregation: the phrase readout: ``"mean"`` or ``"max"`` over each phrase's tokens,
            or ``"eot"``: each class name is one token, the end-of-text (sentence) state of
            its own templated sequence, for the training positives and the class scores
            (needs a token encoder with sentence tokens: ``OpenCLIPTokenEncoder``). Set later
            as ``model.roi_heads.box_predictor.aggregation``.
        cls_loss: ``"focal"`` (GLIP's sigmoid focal loss, the default) or ``"softmax"``
            (cross-entropy over the prompt's tokens and a background embedding, ViLD-text's
            rule: an ablation; see :class:`RegionWordOutputLayers`). Set later as
            ``model.roi_heads.box_predictor.cls_loss``.
        temperature, learn_temperature, token_bias: the score's scale (initial, learned or
            fixed) and GLIP's bias terms (:class:`RegionWordOutputLayers`; ViLD-text's head is
            ``0.01, False, False`` with ``cls_loss="softmax"``).
        kwargs: :class:`GroundingRCNN` arguments (``fusion_layers``,
            ``freeze_text_projection`` (keep the text projections fixed: the tokens stay the
            encoder's up to a rotation) ...).
    """
    unknown = sorted(set(kwargs) - set(_OWN))
    if unknown:
        raise TypeError(f"grounding_model: unknown arguments {unknown}; known: {list(_OWN)}")
    roi = ov_model.roi_heads
    pred = roi.box_predictor
    box_predictor = L(RegionWordOutputLayers)(
        input_shape=pred.input_shape,
        box2box_transform=pred.box2box_transform,
        num_classes=L(count_names)(names=train_vocabulary),
        text_dim=text_dim,
        embed_dim=embed_dim,
        aggregation=aggregation,
        cls_loss=cls_loss,
        temperature=temperature,
        learn_temperature=learn_temperature,
        token_bias=token_bias,
        test_score_thresh=pred.test_score_thresh,
        test_nms_thresh=pred.test_nms_thresh,
        test_topk_per_image=pred.test_topk_per_image,
    )
    roi_args = {
        k: v for k, v in roi.items() if k not in ("_target_", "box_predictor", "num_classes")
    }
    return L(GroundingRCNN)(
        backbone=ov_model.backbone,
        proposal_generator=ov_model.proposal_generator,
        roi_heads=L(GroundingROIHeads)(box_predictor=box_predictor, **roi_args),
        pixel_mean=ov_model.pixel_mean,
        pixel_std=ov_model.pixel_std,
        input_format=ov_model.input_format,
        token_encoder=token_encoder,
        train_vocabulary=train_vocabulary,
        vocabulary=vocabulary,
        text_dim=text_dim,
        **kwargs,
    )


def teacher_token_encoder(
    checkpoint: str | os.PathLike,
    device: str | None = None,
    max_tokens: int = 256,
    template: str = "a {}.",
):
    """The OV-Shapes CLIP teacher's text tower as a token encoder (``teacher.pt`` with its
    open_clip config ``teacher.json`` beside it), reading each name inside ``template`` (one
    of the caption templates the teacher was trained with; see ``OpenCLIPTokenEncoder``)."""
    from ovdet.text import OpenCLIPTokenEncoder

    path = Path(checkpoint)
    config = path.with_suffix(".json")
    for f in (path, config):
        if not f.is_file():
            raise FileNotFoundError(
                f"OV-Shapes teacher file {f} not found: set ov_shapes.teacher to a teacher.pt "
                "made by `ovdet bench ov-shapes` (teacher.json beside it)"
            )
    return OpenCLIPTokenEncoder.from_config(
        str(config), str(path), device=device, max_tokens=max_tokens, template=template
    )


def prepare_ov_shapes(cfg: Any, teacher_checkpoint: str | os.PathLike) -> None:
    """The OV-Shapes benchmark's preparation: this seed's teacher text tower reads the
    prompts (like ViLD-text's class embeddings, made by the same tower)."""
    cfg.ov_shapes.teacher = str(teacher_checkpoint)
