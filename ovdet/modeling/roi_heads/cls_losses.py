"""Classification losses of the open-vocabulary box predictor, one module each.

A loss module turns the predictor's (R, C + 1) logits (background last) into

- a training loss against labels in [0, C] (C = background, -1 ignored): ``forward``;
- class probabilities for inference, (R, C + 1) with the background last: ``probs``.

:class:`OVFastRCNNOutputLayers` takes one as ``cls_loss`` (default
:class:`SoftmaxClassification`), so a new loss is a new module here, not a branch in the
predictor. The sigmoid losses own a learned scalar bias (so it is saved with the predictor
as ``cls_loss.bias``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ClassificationLoss",
    "FederatedClassification",
    "MASK_FILLS",
    "MaskedSoftmaxClassification",
    "SigmoidClassification",
    "SoftmaxClassification",
    "federated_class_weights",
    "sample_federated_classes",
]


class ClassificationLoss(nn.Module):
    """Interface: ``forward(scores (R, C+1), gt_classes (R,)) -> scalar`` and
    ``probs(scores) -> (R, C+1)``; ``check(num_classes)`` validates the training vocabulary
    size when the predictor is built."""

    def check(self, num_classes: int) -> None:
        """Raise if the loss cannot serve a training vocabulary of ``num_classes`` classes."""

    def probs(self, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _valid(
        scores: torch.Tensor, gt_classes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        valid = gt_classes >= 0
        if not bool(valid.any()):
            return None
        return scores[valid], gt_classes[valid]


class SoftmaxClassification(ClassificationLoss):
    """Cross-entropy over the C classes and the background (ViLD-text); softmax probabilities."""

    def forward(self, scores: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the regions with a label >= 0 (0 with a graph if none).

        Args:
            scores: (R, C + 1) logits, background last.
            gt_classes: (R,) labels in [0, C] or -1 (ignored).
        """
        picked = self._valid(scores, gt_classes)
        if picked is None:
            return scores.sum() * 0.0
        return F.cross_entropy(*picked, reduction="mean")

    def probs(self, scores: torch.Tensor) -> torch.Tensor:
        """(R, C + 1) softmax probabilities, background last."""
        return F.softmax(scores, dim=-1)


# how MaskedSoftmaxClassification treats the logits of masked classes
MASK_FILLS = ("zero", "exclude")


class MaskedSoftmaxClassification(SoftmaxClassification):
    """Softmax cross-entropy with some training classes masked out (ViLD's ``mask_rare``).

    ViLD trains OV-LVIS with a classifier over all 1203 LVIS classes and masks the rare ones in
    the loss: tensorflow/tpu ``projects/vild/modeling/vild_losses.py::FastrcnnClassLoss``
    multiplies the (temperature-scaled) logits by a 0/1 mask of the classes
    (``frcnn_class_loss.mask_rare: true``, the mask file ``lvis_rare_masks.npy`` holds 0 for the
    rare classes) before ``softmax_cross_entropy``. A masked class therefore keeps a constant
    logit of 0 (it still enters the partition function, with no gradient), it is not removed.
    ``fill="exclude"`` removes it instead (logit -inf). The background column is never masked.

    Inference (:meth:`probs`) is the plain softmax over every class, as in ViLD's
    post-processing (the mask applies to the training loss only).

    Args:
        class_mask: (C_train,) bool (or 0/1) with True for the classes that are trained
            (ViLD: the non-rare classes), False for the masked ones.
        fill: ``"zero"`` (ViLD's: masked logits become 0) or ``"exclude"`` (masked logits
            become -inf).
    """

    def __init__(self, class_mask: torch.Tensor | Sequence[bool], fill: str = "zero") -> None:
        super().__init__()
        if fill not in MASK_FILLS:
            raise ValueError(
                f"MaskedSoftmaxClassification: fill must be one of {MASK_FILLS}, got {fill!r}"
            )
        mask = torch.as_tensor(class_mask)
        if mask.dim() != 1 or mask.numel() == 0:
            raise ValueError(
                "MaskedSoftmaxClassification: class_mask must be a non-empty (C_train,) vector, "
                f"got shape {tuple(mask.shape)}"
            )
        if mask.dtype != torch.bool:
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError("MaskedSoftmaxClassification: class_mask must hold 0/1 or bools")
            mask = mask.bool()
        if not bool(mask.any()):
            raise ValueError("MaskedSoftmaxClassification: class_mask masks every class")
        self.fill = fill
        self.register_buffer("class_mask", mask, persistent=False)

    def check(self, num_classes: int) -> None:
        if self.class_mask.numel() != num_classes:
            raise ValueError(
                f"MaskedSoftmaxClassification: class_mask has {self.class_mask.numel()} entries "
                f"but the training vocabulary has {num_classes} classes"
            )

    def masked_logits(self, scores: torch.Tensor) -> torch.Tensor:
        """(R, C + 1) logits with the masked classes' columns set to 0 (or -inf)."""
        self.check(scores.shape[1] - 1)
        keep = torch.cat([self.class_mask, self.class_mask.new_ones(1)]).to(scores.device)
        if self.fill == "zero":
            return scores * keep.to(scores.dtype)
        return scores.masked_fill(~keep, float("-inf"))

    def forward(self, scores: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the masked logits over the regions with a label >= 0.

        Args:
            scores: (R, C + 1) logits, background last.
            gt_classes: (R,) labels in [0, C] or -1 (ignored); a masked class is not a valid
                label.
        """
        picked = self._valid(scores, gt_classes)
        if picked is None:
            return scores.sum() * 0.0
        scores, gt_classes = picked
        fg = gt_classes[gt_classes < self.class_mask.numel()]
        if fg.numel() and not bool(self.class_mask.to(fg.device)[fg].all()):
            bad = sorted({int(c) for c in fg[~self.class_mask.to(fg.device)[fg]]})
            raise ValueError(
                f"MaskedSoftmaxClassification: regions labelled with masked classes {bad[:10]}; "
                "the mask must keep every class that has training boxes"
            )
        return F.cross_entropy(self.masked_logits(scores), gt_classes, reduction="mean")

    def extra_repr(self) -> str:
        kept = int(self.class_mask.sum())
        return f"trained={kept}/{self.class_mask.numel()}, fill={self.fill!r}"


class SigmoidClassification(ClassificationLoss):
    """Binary cross-entropy on the C foreground columns (background rows: all-zero targets).

    A learned scalar bias, initialised to ``-log((1 - p) / p)`` with ``p = prior_prob``, is
    added to the foreground logits in the loss and at inference: with cos / tau logits near 0
    at initialisation every class would otherwise start at probability 0.5 and the BCE over
    hundreds of negatives would swamp training. The loss is summed over classes and divided
    by the number of regions.

    Args:
        prior_prob: initial foreground probability.
        use_bias: learn the scalar bias (default). False: no bias at all (the logits are used
            as they are; ``prior_prob`` is then unused), as RKD's and Detic's OV-COCO
            classifiers (``MODEL.ROI_BOX_HEAD.USE_BIAS: 0.0``, ``ZeroShotClassifier``).
    """

    def __init__(self, prior_prob: float = 0.01, use_bias: bool = True) -> None:
        super().__init__()
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(
                f"{type(self).__name__}: prior_prob must be in (0, 1), got {prior_prob}"
            )
        self.prior_prob = float(prior_prob)
        self.use_bias = bool(use_bias)
        if self.use_bias:
            self.bias = nn.Parameter(torch.tensor(-math.log((1.0 - prior_prob) / prior_prob)))
        else:
            self.register_buffer("bias", torch.zeros(()), persistent=False)

    def columns(self, gt_classes: torch.Tensor, num_classes: int) -> torch.Tensor | None:
        """Foreground columns that enter the loss; None: all of them."""
        return None

    def forward(self, scores: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
        """BCE summed over the (selected) classes, divided by the number of valid regions.

        Args:
            scores: (R, C + 1) logits, background last.
            gt_classes: (R,) labels in [0, C] or -1 (ignored).
        """
        picked = self._valid(scores, gt_classes)
        if picked is None:
            return scores.sum() * 0.0
        scores, gt_classes = picked
        num_classes = scores.shape[1] - 1
        logits = scores[:, :num_classes] + self.bias
        # one_hot over C + 1 then drop the background column: background rows are all zero.
        target = F.one_hot(gt_classes, num_classes + 1)[:, :num_classes].to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        classes = self.columns(gt_classes, num_classes)
        if classes is not None:
            column_mask = torch.zeros(num_classes, dtype=loss.dtype, device=loss.device)
            column_mask[classes] = 1.0
            loss = loss * column_mask[None, :]
        return loss.sum() / scores.shape[0]

    def probs(self, scores: torch.Tensor) -> torch.Tensor:
        """(R, C + 1): independent sigmoids of the foreground columns, background column 0
        (``fast_rcnn_inference`` drops it)."""
        fg = torch.sigmoid(scores[:, :-1] + self.bias)
        return torch.cat([fg, fg.new_zeros((fg.shape[0], 1))], dim=1)

    def extra_repr(self) -> str:
        return f"prior_prob={self.prior_prob}, use_bias={self.use_bias}"


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


class FederatedClassification(SigmoidClassification):
    """Detic's federated loss for LVIS: the sigmoid BCE restricted, each iteration, to the
    classes of the batch's labels plus negatives sampled with probability proportional to
    ``class_weights`` (``num_sampled`` columns in all). A class with weight 0 (e.g. a rare
    LVIS class in OV-LVIS) is never sampled as a negative.

    Args:
        class_weights: (C_train,) sampling weights, e.g.
            ``federated_class_weights(image_counts, 0.5)``.
        num_sampled: classes per iteration (Detic: 50).
        prior_prob: initial foreground probability of the bias.
        use_bias: see :class:`SigmoidClassification`.
    """

    def __init__(
        self,
        class_weights: torch.Tensor | Sequence[float],
        num_sampled: int = 50,
        prior_prob: float = 0.01,
        use_bias: bool = True,
    ) -> None:
        super().__init__(prior_prob, use_bias)
        w = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
        if w.numel() == 0 or (w < 0).any():
            raise ValueError(
                "FederatedClassification: class_weights must be a non-empty vector of "
                "non-negative per-class sampling weights"
            )
        if num_sampled < 1:
            raise ValueError(
                f"FederatedClassification: num_sampled must be >= 1, got {num_sampled}"
            )
        self.num_sampled = int(num_sampled)
        self.register_buffer("class_weights", w, persistent=False)

    def check(self, num_classes: int) -> None:
        if self.class_weights.numel() != num_classes:
            raise ValueError(
                f"FederatedClassification: class_weights has {self.class_weights.numel()} "
                f"entries but the training vocabulary has {num_classes} classes"
            )

    def columns(self, gt_classes: torch.Tensor, num_classes: int) -> torch.Tensor:
        self.check(num_classes)
        return sample_federated_classes(
            gt_classes, num_classes, self.num_sampled, self.class_weights
        )

    def extra_repr(self) -> str:
        return (
            f"num_sampled={self.num_sampled}, prior_prob={self.prior_prob}, "
            f"use_bias={self.use_bias}"
        )
