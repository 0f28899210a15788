"""Open-vocabulary Fast R-CNN output layers: text-embedding classifier + class-agnostic boxes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec, cat
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers
from detectron2.structures import Instances
from torch import nn

from .cls_losses import ClassificationLoss, SoftmaxClassification

__all__ = ["OVFastRCNNOutputLayers", "log_classification_stats"]


def log_classification_stats(
    scores: torch.Tensor, gt_classes: torch.Tensor, prefix: str = "fast_rcnn"
) -> None:
    """Log the classification accuracy of a batch to detectron2's event storage.

    ``{prefix}/cls_accuracy`` (all regions), ``{prefix}/fg_cls_accuracy`` (foreground
    regions) and ``{prefix}/false_negative`` (foreground predicted as background), the
    scalars detectron2's Fast R-CNN head logs.

    Args:
        scores: (R, C + 1) logits, background last.
        gt_classes: (R,) labels in [0, C] (C = background).
    """
    num = gt_classes.numel()
    if num == 0:
        return
    from detectron2.utils.events import get_event_storage

    bg = scores.shape[1] - 1
    pred = scores.argmax(dim=1)
    fg = (gt_classes >= 0) & (gt_classes < bg)
    num_fg = int(fg.nonzero().numel())
    storage = get_event_storage()
    storage.put_scalar(f"{prefix}/cls_accuracy", (pred == gt_classes).sum().item() / num)
    if num_fg > 0:
        fg_pred = pred[fg]
        storage.put_scalar(
            f"{prefix}/fg_cls_accuracy", (fg_pred == gt_classes[fg]).sum().item() / num_fg
        )
        storage.put_scalar(f"{prefix}/false_negative", (fg_pred == bg).sum().item() / num_fg)


class OVFastRCNNOutputLayers(FastRCNNOutputLayers):
    """Fast R-CNN output layers whose classifier is an injected open-vocabulary module.

    Box regression is class-agnostic (``bbox_pred`` outputs 4 deltas per region) so it does
    not depend on the vocabulary. The classifier (e.g. :class:`TextEmbeddingClassifier`)
    returns (R, C + 1) logits with the background last, where C follows its active
    vocabulary: C_train in training, the test vocabulary in eval mode. Inference uses
    detectron2's ``fast_rcnn_inference``, which drops the last column and expands the single
    class-agnostic box to every class above ``test_score_thresh``, for any C.

    ``self.num_classes`` keeps detectron2's meaning for losses: the number of *training*
    classes (labels in [0, C_train], C_train = background).

    The classification loss and the matching inference probabilities are the injected
    ``cls_loss`` module (:mod:`~ovdet.modeling.roi_heads.cls_losses`): softmax
    cross-entropy (ViLD-text, the default), sigmoid BCE, or Detic's federated loss.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec | int,
        *,
        box2box_transform: Box2BoxTransform,
        classifier: nn.Module,
        cls_loss: ClassificationLoss | None = None,
        test_score_thresh: float = 0.05,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: float | dict[str, float] = 1.0,
    ):
        """
        Args:
            input_shape: shape of the per-region features of the box head.
            box2box_transform: box delta parametrisation.
            classifier: module mapping (R, in) features to (R, C + 1) logits, with
                ``num_train_classes`` / ``num_classes`` properties and ``embed(x)``; it owns the
                vocabulary.
            cls_loss: a :class:`~ovdet.modeling.roi_heads.cls_losses.ClassificationLoss`
                (default: softmax cross-entropy).
            test_score_thresh, test_nms_thresh, test_topk_per_image: inference filtering.
            smooth_l1_beta, box_reg_loss_type, loss_weight: as in detectron2.
        """
        cls_loss = SoftmaxClassification() if cls_loss is None else cls_loss
        if not isinstance(cls_loss, ClassificationLoss):
            raise TypeError(
                f"OVFastRCNNOutputLayers: cls_loss must be a ClassificationLoss (softmax, sigmoid "
                f"or federated from ovdet.modeling.roi_heads.cls_losses), got "
                f"{type(cls_loss).__name__}"
            )
        num_train = int(classifier.num_train_classes)
        cls_loss.check(num_train)
        super().__init__(
            input_shape,
            box2box_transform=box2box_transform,
            num_classes=num_train,
            test_score_thresh=test_score_thresh,
            test_nms_thresh=test_nms_thresh,
            test_topk_per_image=test_topk_per_image,
            cls_agnostic_bbox_reg=True,
            smooth_l1_beta=smooth_l1_beta,
            box_reg_loss_type=box_reg_loss_type,
            loss_weight=loss_weight,
        )
        # The parent builds a fixed-size linear classifier; the vocabulary-agnostic injected
        # classifier replaces it.
        del self.cls_score
        self.classifier = classifier
        self.cls_loss = cls_loss

    @classmethod
    def from_config(
        cls, cfg, input_shape: ShapeSpec, *, classifier: nn.Module, **kwargs: Any
    ) -> dict[str, Any]:
        """Build from a yacs config plus an explicitly passed ``classifier``."""
        ret = super().from_config(cfg, input_shape)
        for key in ("num_classes", "cls_agnostic_bbox_reg"):
            ret.pop(key)
        ret["classifier"] = classifier
        ret.update(kwargs)
        return ret

    @property
    def num_active_classes(self) -> int:
        """Number of classes scored now (follows the classifier's active vocabulary)."""
        return int(self.classifier.num_classes)

    def set_vocabulary(self, embeddings: torch.Tensor) -> None:
        """Set the classifier's test vocabulary, (C, D) text embeddings."""
        self.classifier.set_vocabulary(embeddings)

    def get_vocabulary(self) -> torch.Tensor:
        """(C_test, D) normalised test-vocabulary embeddings of the classifier (a copy)."""
        return self.classifier.get_vocabulary()

    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Names of the test vocabulary's rows; this predictor scores every class alike, so
        it ignores them (subclasses that tell base from novel classes use them)."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(R, ...) region features -> (R, D) normalised region embeddings."""
        return self.classifier.embed(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (R, ...) per-region features.

        Returns:
            scores: (R, C + 1) logits, background last (C = active vocabulary size).
            proposal_deltas: (R, 4) class-agnostic box deltas.
        """
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        return self.classifier(x), self.bbox_pred(x)

    def losses(
        self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]
    ) -> dict[str, torch.Tensor]:
        """
        Args:
            predictions: output of :meth:`forward` in training mode.
            proposals: sampled proposals with ``proposal_boxes``, ``gt_classes`` (in
                [0, C_train], C_train = background) and ``gt_boxes`` for foreground.

        Returns:
            ``{"loss_cls", "loss_box_reg"}``.
        """
        scores, proposal_deltas = predictions
        if scores.shape[1] != self.num_classes + 1:
            raise RuntimeError(
                f"OVFastRCNNOutputLayers.losses: logits have {scores.shape[1] - 1} classes but "
                f"training labels index {self.num_classes} training classes; losses are only "
                "defined in training mode (train vocabulary)"
            )
        gt_classes = (
            cat([p.gt_classes for p in proposals], dim=0)
            if len(proposals)
            else torch.empty(0, dtype=torch.long, device=scores.device)
        )
        log_classification_stats(scores, gt_classes)

        if len(proposals):
            proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals], dim=0)
            gt_boxes = cat(
                [(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals],
                dim=0,
            )
        else:
            proposal_boxes = gt_boxes = torch.empty((0, 4), device=proposal_deltas.device)

        losses = {
            "loss_cls": self.cls_loss(scores, gt_classes),
            "loss_box_reg": self.box_reg_loss(
                proposal_boxes, gt_boxes, proposal_deltas, gt_classes
            ),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def predict_probs(
        self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]
    ) -> list[torch.Tensor]:
        """
        Returns:
            per image (Ri, C + 1) class probabilities (``cls_loss.probs``), C = active
            vocabulary size, background last.
        """
        scores, _ = predictions
        probs = self.cls_loss.probs(scores)
        return probs.split([len(p) for p in proposals], dim=0)
