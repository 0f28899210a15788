"""Open-vocabulary ROI heads (FPN and C4) with a class-agnostic mask head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from detectron2.config import configurable
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads, StandardROIHeads
from detectron2.structures import Boxes, Instances
from torch import nn

__all__ = ["OVStandardROIHeads", "OVRes5ROIHeads"]


def _resolve_num_classes(num_classes: int | None, box_predictor: nn.Module, where: str) -> int:
    """ROI-head labels are training labels: their count is the predictor's train vocabulary."""
    expected = int(box_predictor.num_classes)
    if num_classes is None:
        return expected
    if int(num_classes) != expected:
        raise ValueError(
            f"{where}: num_classes={num_classes} but the box predictor's training vocabulary "
            f"has {expected} classes; leave num_classes unset (it follows train_embeddings)"
        )
    return expected


def _check_class_agnostic_mask_head(mask_head: nn.Module | None, where: str) -> None:
    predictor = getattr(mask_head, "predictor", None)
    if isinstance(predictor, nn.Conv2d) and predictor.out_channels != 1:
        raise ValueError(
            f"{where}: the mask head predicts {predictor.out_channels} class-specific masks; "
            "open-vocabulary models need a class-agnostic mask head (num_classes=1), because "
            "the vocabulary changes at test time"
        )


def _check_predictor(box_predictor: nn.Module, where: str) -> None:
    for name in ("embed", "set_vocabulary", "get_vocabulary", "set_class_names"):
        if not callable(getattr(box_predictor, name, None)):
            raise TypeError(
                f"{where}: box_predictor {type(box_predictor).__name__} has no {name}(); use "
                "OVFastRCNNOutputLayers (or a predictor with the same public API)"
            )


def _yacs_unsupported(cls: type) -> None:
    raise TypeError(
        f"{cls.__name__} is built from a LazyConfig (see configs/common/models/), not from a yacs "
        "CfgNode: its classifier needs class text embeddings, which are data, not config keys"
    )


class _VocabularyMixin:
    """Public vocabulary API forwarded to the box predictor."""

    box_predictor: nn.Module

    def set_vocabulary(self, embeddings: torch.Tensor) -> None:
        """Set the test vocabulary: (C, D) class text embeddings."""
        self.box_predictor.set_vocabulary(embeddings)

    def get_vocabulary(self) -> torch.Tensor:
        """(C_test, D) normalised test-vocabulary embeddings (a copy)."""
        return self.box_predictor.get_vocabulary()

    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Names of the test vocabulary's rows (None: unknown), for the box predictor."""
        self.box_predictor.set_class_names(names)


@ROI_HEADS_REGISTRY.register()
class OVStandardROIHeads(_VocabularyMixin, StandardROIHeads):
    """detectron2 :class:`StandardROIHeads` (FPN) for open-vocabulary detection.

    The box predictor is an :class:`OVFastRCNNOutputLayers` (text-embedding classifier,
    class-agnostic boxes) and the mask head, when present, must be class-agnostic.
    ``num_classes`` (labels of the training data) defaults to the predictor's training
    vocabulary size.
    """

    @configurable
    def __init__(self, *, box_predictor: nn.Module, num_classes: int | None = None, **kwargs):
        """
        Args:
            box_predictor: an :class:`OVFastRCNNOutputLayers`.
            num_classes: number of training classes; inferred from ``box_predictor``.
            kwargs: the other arguments of :class:`StandardROIHeads` (``box_in_features``,
                ``box_pooler``, ``box_head``, ``mask_*``, matcher and sampling settings).
        """
        _check_predictor(box_predictor, type(self).__name__)
        _check_class_agnostic_mask_head(kwargs.get("mask_head"), type(self).__name__)
        num_classes = _resolve_num_classes(num_classes, box_predictor, type(self).__name__)
        super().__init__(box_predictor=box_predictor, num_classes=num_classes, **kwargs)

    @classmethod
    def from_config(cls, cfg, input_shape) -> dict[str, Any]:
        _yacs_unsupported(cls)

    def _forward_mask(self, features: dict[str, torch.Tensor], instances: list[Instances]):
        """detectron2's mask branch; in training, a proposal whose box has no mask target
        (``gt_mask_valid`` False: a box-only annotation, or a SAM mask below the score
        threshold; :class:`~ovdet.data.mapper.OVDatasetMapper` ``masks_optional``) takes no
        part in the mask loss. Boxes and classes still train on it."""
        if self.training:
            instances = [p[p.gt_mask_valid] if p.has("gt_mask_valid") else p for p in instances]
        return super()._forward_mask(features, instances)

    def region_embeddings(
        self, features: dict[str, torch.Tensor], boxes: list[Boxes]
    ) -> torch.Tensor:
        """Region embeddings of given boxes (for distillation).

        Args:
            features: backbone/FPN feature maps by name, each (N, C, H, W).
            boxes: N :class:`Boxes`, image-coordinate XYXY boxes of each image.

        Returns:
            (sum_i R_i, D) L2-normalised region embeddings, images concatenated in order.
            Subclasses choose which embedding is distilled (ViLD-ensemble: its image head).
        """
        pooled = self.box_pooler([features[f] for f in self.box_in_features], boxes)
        return self.box_predictor.embed(self.box_head(pooled))


@ROI_HEADS_REGISTRY.register()
class OVRes5ROIHeads(_VocabularyMixin, Res5ROIHeads):
    """detectron2 :class:`Res5ROIHeads` (C4) for open-vocabulary detection.

    Same box predictor and class-agnostic mask head requirements as
    :class:`OVStandardROIHeads`; box and mask heads share the pooled res5 features.
    """

    @configurable
    def __init__(self, *, box_predictor: nn.Module, num_classes: int | None = None, **kwargs):
        """
        Args:
            box_predictor: an :class:`OVFastRCNNOutputLayers` (input: 2048-d pooled res5
                features for R50).
            num_classes: number of training classes; inferred from ``box_predictor``.
            kwargs: the other arguments of :class:`Res5ROIHeads` (``in_features``,
                ``pooler``, ``res5``, ``mask_head``, matcher and sampling settings).
        """
        _check_predictor(box_predictor, type(self).__name__)
        _check_class_agnostic_mask_head(kwargs.get("mask_head"), type(self).__name__)
        num_classes = _resolve_num_classes(num_classes, box_predictor, type(self).__name__)
        super().__init__(box_predictor=box_predictor, num_classes=num_classes, **kwargs)

    @classmethod
    def from_config(cls, cfg, input_shape) -> dict[str, Any]:
        _yacs_unsupported(cls)

    def region_embeddings(
        self, features: dict[str, torch.Tensor], boxes: list[Boxes]
    ) -> torch.Tensor:
        """Region embeddings of given boxes (for distillation).

        Args:
            features: backbone feature maps by name, each (N, C, H, W) (``res4`` for C4).
            boxes: N :class:`Boxes`, image-coordinate XYXY boxes of each image.

        Returns:
            (sum_i R_i, D) L2-normalised region embeddings, images concatenated in order.
        """
        # the box branch of Res5ROIHeads: ROI pooling, res5, global average
        x = self.res5(self.pooler([features[f] for f in self.in_features], boxes))
        return self.box_predictor.embed(x.mean(dim=[2, 3]))
