"""Open-vocabulary Fast R-CNN output layers: text-embedding classifier + class-agnostic boxes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec, cat
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads.fast_rcnn import (
    FastRCNNOutputLayers,
    _log_classification_stats,
)
from detectron2.structures import Instances
from torch import nn

__all__ = [
    "OVFastRCNNOutputLayers",
    "federated_class_weights",
    "sample_federated_classes",
    "LOSS_TYPES",
]

LOSS_TYPES = ("softmax", "sigmoid", "federated")


def federated_class_weights(counts: Sequence[float] | torch.Tensor, power: float = 0.5):
    """Sampling weights of the federated loss: ``counts ** power``.

    Args:
        counts: (C,) per-class frequencies, e.g. LVIS ``image_count`` of each training class.
        power: exponent (Detic uses 0.5).

    Returns:
        (C,) float32 tensor of non-negative weights.
    """
    w = torch.as_tensor(counts, dtype=torch.float32)
    if w.dim() != 1 or (w < 0).any():
        raise ValueError(
            f"federated_class_weights: counts must be a 1-D non-negative vector, got "
            f"shape {tuple(w.shape)}"
        )
    return w.pow(power)


def sample_federated_classes(
    gt_classes: torch.Tensor,
    num_classes: int,
    num_sampled: int,
    weights: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Classes that enter the federated loss for one iteration (Detic).

    All foreground classes present in ``gt_classes`` are kept; negatives are drawn without
    replacement with probability proportional to ``weights`` until ``num_sampled`` classes
    are reached (or the vocabulary is exhausted).

    Args:
        gt_classes: (R,) labels in [0, C] (C = background) or -1 (ignored).
        num_classes: C, the number of foreground classes.
        num_sampled: total number of classes to return (at least the GT classes).
        weights: (C,) non-negative sampling weights.
        generator: optional RNG for reproducible sampling.

    Returns:
        (K,) long tensor of distinct class indices in [0, C); the GT classes first.
    """
    fg = gt_classes[(gt_classes >= 0) & (gt_classes < num_classes)]
    positives = torch.unique(fg)
    num_neg = min(num_sampled, num_classes) - positives.numel()
    if num_neg <= 0:
        return positives
    prob = weights.to(device=gt_classes.device, dtype=torch.float32).clone()
    prob[positives] = 0.0
    available = int((prob > 0).sum())
    num_neg = min(num_neg, available)
    if num_neg <= 0:
        return positives
    if generator is not None and generator.device != prob.device:
        negatives = torch.multinomial(prob.cpu(), num_neg, replacement=False, generator=generator)
        negatives = negatives.to(prob.device)
    else:
        negatives = torch.multinomial(prob, num_neg, replacement=False, generator=generator)
    return torch.cat([positives, negatives])


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

    Classification losses (``loss_type``):

    - ``"softmax"``: cross-entropy over C_train + background (ViLD-text).
    - ``"sigmoid"``: binary cross-entropy on the C_train foreground columns; background rows
      have all-zero targets; summed over classes and divided by the number of regions.
    - ``"federated"``: the same BCE restricted to ``fed_num_classes`` columns per iteration:
      the GT classes of the batch plus negatives sampled with probability proportional to
      ``fed_class_weights`` (Detic's federated loss for LVIS).

    For the sigmoid losses a learned scalar bias, initialised to ``-log((1 - p) / p)`` with
    ``p = prior_prob``, is added to the foreground logits (in losses and at inference):
    with cos/tau logits near 0 at initialisation every class would otherwise start at
    probability 0.5 and the BCE over hundreds of negatives would swamp training.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec | int,
        *,
        box2box_transform: Box2BoxTransform,
        classifier: nn.Module,
        loss_type: str = "softmax",
        fed_class_weights: torch.Tensor | Sequence[float] | None = None,
        fed_num_classes: int = 50,
        prior_prob: float = 0.01,
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
            loss_type: "softmax" | "sigmoid" | "federated".
            fed_class_weights: (C_train,) sampling weights for "federated"
                (e.g. ``federated_class_weights(image_counts, 0.5)``).
            fed_num_classes: classes per iteration in the federated loss.
            prior_prob: initial foreground probability of the sigmoid losses' bias.
            test_score_thresh, test_nms_thresh, test_topk_per_image: inference filtering.
            smooth_l1_beta, box_reg_loss_type, loss_weight: as in detectron2.
        """
        if loss_type not in LOSS_TYPES:
            raise ValueError(
                f"OVFastRCNNOutputLayers: loss_type must be one of {LOSS_TYPES}, got {loss_type!r}"
            )
        num_train = int(classifier.num_train_classes)
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
        self.loss_type = loss_type
        self.fed_num_classes = int(fed_num_classes)
        if loss_type == "federated":
            if fed_class_weights is None:
                raise ValueError(
                    "OVFastRCNNOutputLayers: loss_type='federated' needs fed_class_weights, "
                    f"a ({num_train},) vector of per-class sampling weights (e.g. "
                    "federated_class_weights(image_counts, 0.5))"
                )
            w = torch.as_tensor(fed_class_weights, dtype=torch.float32).flatten()
            if w.numel() != num_train:
                raise ValueError(
                    f"OVFastRCNNOutputLayers: fed_class_weights has {w.numel()} entries but the "
                    f"training vocabulary has {num_train} classes"
                )
            self.register_buffer("fed_class_weights", w, persistent=False)
        else:
            self.fed_class_weights = None
        if loss_type in ("sigmoid", "federated"):
            if not 0.0 < prior_prob < 1.0:
                raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
            bias = -math.log((1.0 - prior_prob) / prior_prob)
            self.cls_bias = nn.Parameter(torch.tensor(bias))
        else:
            self.cls_bias = None

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
        _log_classification_stats(scores, gt_classes)

        if len(proposals):
            proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals], dim=0)
            gt_boxes = cat(
                [(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals],
                dim=0,
            )
        else:
            proposal_boxes = gt_boxes = torch.empty((0, 4), device=proposal_deltas.device)

        losses = {
            "loss_cls": self.classification_loss(scores, gt_classes),
            "loss_box_reg": self.box_reg_loss(
                proposal_boxes, gt_boxes, proposal_deltas, gt_classes
            ),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def classification_loss(self, scores: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
        """Classification loss of ``loss_type``.

        Args:
            scores: (R, C + 1) logits, background last.
            gt_classes: (R,) labels in [0, C] or -1 (ignored).

        Returns:
            scalar loss (0 with a graph to ``scores`` when there are no valid regions).
        """
        valid = gt_classes >= 0
        if not bool(valid.any()):
            return scores.sum() * 0.0
        scores, gt_classes = scores[valid], gt_classes[valid]
        if self.loss_type == "softmax":
            return F.cross_entropy(scores, gt_classes, reduction="mean")

        num_classes = scores.shape[1] - 1
        logits = scores[:, :num_classes] + self.cls_bias
        # one_hot over C + 1 then drop the background column: background rows are all zero.
        target = F.one_hot(gt_classes, num_classes + 1)[:, :num_classes].to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if self.loss_type == "federated":
            classes = sample_federated_classes(
                gt_classes, num_classes, self.fed_num_classes, self.fed_class_weights
            )
            column_mask = torch.zeros(num_classes, dtype=loss.dtype, device=loss.device)
            column_mask[classes] = 1.0
            loss = loss * column_mask[None, :]
        return loss.sum() / scores.shape[0]

    def predict_probs(
        self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]
    ) -> list[torch.Tensor]:
        """
        Returns:
            per image (Ri, C + 1) class probabilities, C = active vocabulary size. For the
            sigmoid losses the foreground columns are independent sigmoids and the last
            (background) column is 0 (``fast_rcnn_inference`` drops it).
        """
        scores, _ = predictions
        num_inst_per_image = [len(p) for p in proposals]
        if self.loss_type == "softmax":
            probs = F.softmax(scores, dim=-1)
        else:
            fg = torch.sigmoid(scores[:, :-1] + self.cls_bias)
            probs = torch.cat([fg, fg.new_zeros((fg.shape[0], 1))], dim=1)
        return probs.split(num_inst_per_image, dim=0)
