"""Region-word alignment head: the scores of regions against tokens replace class logits."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from detectron2.layers import ShapeSpec, cat
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers
from detectron2.structures import Instances
from fvcore.nn import sigmoid_focal_loss
from torch import nn

from ovdet.methods.grounding.fusion import LOGIT_CLAMP
from ovdet.methods.grounding.prompts import (
    AGGREGATIONS,
    aggregate_phrase_scores,
    last_tokens,
)

__all__ = ["CLS_LOSSES", "RegionWordOutputLayers", "TextContext"]

CLS_LOSSES = ("focal", "softmax")


@dataclass
class TextContext:
    """The prompt one ROI-head call scores against.

    Attributes:
        tokens: (N, L, D) fused token features, one row per image of the batch.
        mask: (L,) bool, True for real tokens; or (N, L), one row per image, when the rows
            hold different prompts (several prompt chunks at once, inference only).
        phrase_map: (P, L) binary positive map of the prompt's phrases; or a list of N such
            maps (P may differ), one per row of ``tokens``, with a 2-D ``mask``.
        class_rows: (C_train,) long, training only: the phrase of each training class in the
            prompt, -1 for a class not in it (its boxes then train as background).
        counts: regions per image, in the order the ROI heads concatenate them (set by
            :class:`~ovdet.methods.grounding.roi_heads.GroundingROIHeads`).
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    phrase_map: torch.Tensor | list[torch.Tensor]
    class_rows: torch.Tensor | None = None
    counts: list[int] | None = None

    @property
    def shared(self) -> bool:
        """True when every image is scored against the same prompt."""
        return isinstance(self.phrase_map, torch.Tensor)

    def per_image(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (L,) mask and (P_i, L) phrase map of each of the ``n`` images."""
        if self.shared:
            return [(self.mask, self.phrase_map)] * n
        if len(self.phrase_map) != n or self.mask.dim() != 2 or len(self.mask) != n:
            raise RuntimeError(
                f"TextContext: {len(self.phrase_map)} phrase maps and masks of shape "
                f"{tuple(self.mask.shape)} for {n} images"
            )
        return list(zip(self.mask, self.phrase_map))


class RegionWordOutputLayers(FastRCNNOutputLayers):
    """Fast R-CNN output layers whose class logits are region-word alignment scores.

    For region features x and the tokens t_1..t_L of the prompt (fused, per image)::

        S = <norm(W_r x), norm(W_t t_j)> / exp(log_scale) + <norm(W_t t_j), b> + b_0

    (GLIP's dot-product head; ``b_0`` from a prior of 0.01, -4.6; ``learn_temperature`` and
    ``token_bias`` turn the learned scale and the bias terms off). Training: sigmoid focal
    loss (alpha 0.25, gamma 2) of S against the positive map of each region's phrase, over
    the real tokens, background regions all zeros, normalised by the foreground regions.
    Inference: a class's score is the mean (or max) of its phrase's token probabilities.
    Boxes are class-agnostic (as in ``OVFastRCNNOutputLayers``).

    ``cls_loss="softmax"`` (an ablation, not GLIP's) scores each region against the prompt's
    real tokens and one learned background embedding ``b_bg`` (``<norm(W_r x), norm(b_bg)> /
    exp(log_scale)``, ViLD-text's background) with a softmax, trains by cross-entropy against
    the region's readout tokens (its positive map divided by its length: the phrase's mass;
    background regions and classes not in the prompt on the background column), and a class's
    score is the probability mass on its readout tokens. Within one prompt this is ViLD-text's
    classification rule with tokens as the classifier; across the prompts of a chunked
    vocabulary each prompt's softmax is over its own names only, so scores of different
    prompts are not normalised together (docs/grounding.md).

    ``aggregation="eot"`` reads each phrase from its last token only, in training (the
    positive map of a box is that one token) and at inference (the class score is that
    token's probability). :class:`~ovdet.methods.grounding.GroundingRCNN` then builds prompts
    of sentence tokens, one per class name (its own sequence's end-of-text state), so the
    last token of a phrase is its only one.

    The prompt is given per call by :meth:`use_text` (the ROI heads do this).

    Args:
        input_shape: box-head output shape.
        box2box_transform: box delta parametrisation.
        num_classes: training classes (ROI labels in [0, C_train], C_train = background).
        text_dim: width of the (fused) tokens.
        embed_dim: width of the joint region-token space.
        temperature: initial ``exp(log_scale)``.
        learn_temperature: learn ``log_scale`` (GLIP); ``False`` keeps it fixed at
            ``temperature`` (a buffer of the same name: ViLD-text's fixed 0.01).
        prior_prob: initial foreground probability (sets ``b_0``).
        token_bias: add the token bias ``<norm(W_t t_j), b> + b_0`` (GLIP); ``False`` scores
            by the scaled cosine alone (ViLD-text; the focal loss then starts at p = 0.5,
            so it is meant for ``cls_loss="softmax"``).
        aggregation: the phrase readout: ``"mean"`` or ``"max"`` over a phrase's tokens at
            inference (training on all of them), or ``"eot"`` (its last token only, in
            training and at inference).
        cls_loss: ``"focal"`` (GLIP: sigmoid focal loss, independent token probabilities) or
            ``"softmax"`` (cross-entropy over the prompt's tokens and a background; see above).
        focal_alpha, focal_gamma: focal loss.
        test_score_thresh, test_nms_thresh, test_topk_per_image: inference filtering.
        smooth_l1_beta, box_reg_loss_type, loss_weight: as in detectron2.
    """

    def __init__(
        self,
        input_shape: ShapeSpec | int,
        *,
        box2box_transform: Box2BoxTransform,
        num_classes: int,
        text_dim: int,
        embed_dim: int = 256,
        temperature: float = 0.1,
        learn_temperature: bool = True,
        prior_prob: float = 0.01,
        token_bias: bool = True,
        aggregation: str = "mean",
        cls_loss: str = "focal",
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        test_score_thresh: float = 0.05,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: float | dict[str, float] = 1.0,
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"RegionWordOutputLayers: aggregation must be one of {AGGREGATIONS}, got "
                f"{aggregation!r}"
            )
        if cls_loss not in CLS_LOSSES:
            raise ValueError(
                f"RegionWordOutputLayers: cls_loss must be one of {CLS_LOSSES}, got {cls_loss!r}"
            )
        if cls_loss == "softmax" and aggregation == "max":
            raise ValueError(
                "RegionWordOutputLayers: cls_loss='softmax' scores a class by the probability "
                "mass on its tokens; aggregation='max' has no meaning there: use 'mean' or 'eot'"
            )
        if not 0.0 < prior_prob < 1.0 or temperature <= 0:
            raise ValueError(
                "RegionWordOutputLayers: prior_prob must be in (0, 1) and temperature > 0, got "
                f"{prior_prob}, {temperature}"
            )
        super().__init__(
            input_shape,
            box2box_transform=box2box_transform,
            num_classes=num_classes,
            test_score_thresh=test_score_thresh,
            test_nms_thresh=test_nms_thresh,
            test_topk_per_image=test_topk_per_image,
            cls_agnostic_bbox_reg=True,
            smooth_l1_beta=smooth_l1_beta,
            box_reg_loss_type=box_reg_loss_type,
            loss_weight=loss_weight,
        )
        del self.cls_score  # the tokens of the prompt are the classifier
        in_dim = self.bbox_pred.in_features
        self.region_proj = nn.Linear(in_dim, embed_dim)
        self.text_proj = nn.Linear(text_dim, embed_dim)
        log_scale = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        self.token_bias = bool(token_bias)
        if self.token_bias:  # without it the head has no bias parameters at all
            self.bias_lang = nn.Parameter(torch.zeros(embed_dim))
            self.bias0 = nn.Parameter(torch.tensor(-math.log((1 - prior_prob) / prior_prob)))
        self.aggregation = aggregation
        self.cls_loss = cls_loss
        if cls_loss == "softmax":  # only then: focal checkpoints keep their keys
            self.bg_embed = nn.Parameter(torch.randn(embed_dim) / math.sqrt(embed_dim))
        self.focal_alpha = float(focal_alpha)
        self.focal_gamma = float(focal_gamma)
        self._text: TextContext | None = None

    def freeze_text_projection(self) -> None:
        """Fix ``text_proj`` to an orthogonal map with no bias (norm-preserving when
        ``embed_dim >= text_dim``), not trained: tokens keep their encoder's geometry and only
        the region side learns to align with them (ViLD-text's fixed text classifier)."""
        nn.init.orthogonal_(self.text_proj.weight)
        nn.init.zeros_(self.text_proj.bias)
        self.text_proj.requires_grad_(False)

    def readout_map(self, phrase_map: torch.Tensor) -> torch.Tensor:
        """The (P, L) positive map this head trains on and reads: ``phrase_map`` itself, or
        with ``"eot"`` one positive per phrase, at its last token."""
        if self.aggregation != "eot":
            return phrase_map
        out = torch.zeros_like(phrase_map)
        out[torch.arange(phrase_map.shape[0], device=out.device), last_tokens(phrase_map)] = 1.0
        return out

    def targets(
        self, gt_classes: torch.Tensor, text: TextContext, num_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-region token targets: (R, L) the positive-map row of each region's class
        (zeros for background and for a class not in the prompt), and (R,) bool, True where
        the region's class is in the prompt."""
        if text.class_rows is None:
            raise RuntimeError("RegionWordOutputLayers.losses: the prompt has no class_rows")
        device = gt_classes.device
        fg = (gt_classes >= 0) & (gt_classes < self.num_classes)
        rows = torch.full_like(gt_classes, -1)
        rows[fg] = text.class_rows.to(device)[gt_classes[fg]]
        in_prompt = rows >= 0
        pmap = self.readout_map(text.phrase_map.to(device))
        targets = torch.zeros(len(gt_classes), num_tokens, device=device, dtype=pmap.dtype)
        targets[in_prompt] = pmap[rows[in_prompt]]
        return targets, in_prompt

    @contextlib.contextmanager
    def use_text(self, text: TextContext) -> Iterator[None]:
        """Score against ``text`` inside the block."""
        previous, self._text = self._text, text
        try:
            yield
        finally:
            self._text = previous

    def _context(self) -> TextContext:
        if self._text is None or self._text.counts is None:
            raise RuntimeError(
                "RegionWordOutputLayers: no prompt; it is called by GroundingROIHeads with "
                "text=TextContext(...) (GroundingRCNN builds it)"
            )
        return self._text

    def token_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(R, in) region features -> (R, L) region-token logits S (see the class doc), with
        ``cls_loss="softmax"`` (R, L + 1): the background logit last."""
        text = self._context()
        if sum(text.counts) != x.shape[0]:
            raise RuntimeError(
                f"RegionWordOutputLayers: {x.shape[0]} regions but the ROI heads counted "
                f"{sum(text.counts)}"
            )
        regions = F.normalize(self.region_proj(x), dim=-1)
        tokens = F.normalize(self.text_proj(text.tokens), dim=-1)  # (N, L, E)
        if self.token_bias:
            bias = tokens @ self.bias_lang + self.bias0  # (N, L)
        else:
            bias = tokens.new_zeros(tokens.shape[:2])
        scale = self.log_scale.exp()
        rows = [
            r @ tokens[i].T / scale + bias[i]
            for i, r in enumerate(regions.split(list(text.counts), dim=0))
        ]
        logits = cat(rows, dim=0) if rows else regions.new_zeros(0, tokens.shape[1])
        if self.cls_loss == "softmax":
            background = regions @ F.normalize(self.bg_embed, dim=0) / scale
            logits = torch.cat([logits, background[:, None]], dim=1)
        return logits.clamp(-LOGIT_CLAMP, LOGIT_CLAMP)

    def _softmax_probs(self, logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(R, L + 1) logits -> (R, L + 1) probabilities over the real tokens and the
        background (padding tokens get 0)."""
        keep = torch.cat([real, real.new_ones(1)])
        return logits.masked_fill(~keep, float("-inf")).softmax(dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (R, ...) per-region features, images concatenated in order.

        Returns:
            (R, L) region-token logits (``cls_loss="softmax"``: (R, L + 1), the background
            last) and (R, 4) class-agnostic box deltas.
        """
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        return self.token_logits(x), self.bbox_pred(x)

    def losses(
        self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]
    ) -> dict[str, torch.Tensor]:
        """``{"loss_cls": focal loss on the positive maps (or the softmax cross-entropy),
        "loss_box_reg"}``."""
        logits, deltas = predictions
        text = self._context()
        if not text.shared:
            raise RuntimeError(
                "RegionWordOutputLayers.losses: training scores a batch against one prompt; "
                "this context holds one prompt per image (an inference batch of chunks)"
            )
        device = logits.device
        gt_classes = (
            cat([p.gt_classes for p in proposals], dim=0)
            if len(proposals)
            else torch.empty(0, dtype=torch.long, device=device)
        )
        num_tokens = text.mask.shape[0]
        targets, in_prompt = self.targets(gt_classes, text, num_tokens)
        targets = targets.to(logits.dtype)
        real = text.mask.to(device)
        if self.cls_loss == "softmax":
            loss_cls = self._softmax_loss(logits, targets, in_prompt, real)
        else:
            loss_cls = sigmoid_focal_loss(
                logits[:, real],
                targets[:, real],
                alpha=self.focal_alpha,
                gamma=self.focal_gamma,
                reduction="sum",
            ) / max(1, int(in_prompt.sum()))
        if len(proposals):
            proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals], dim=0)
            gt_boxes = cat(
                [(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals],
                dim=0,
            )
        else:
            proposal_boxes = gt_boxes = torch.empty((0, 4), device=device)
        losses = {
            "loss_cls": loss_cls,
            "loss_box_reg": self.box_reg_loss(proposal_boxes, gt_boxes, deltas, gt_classes),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def _softmax_loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        in_prompt: torch.Tensor,
        real: torch.Tensor,
    ) -> torch.Tensor:
        """Mean over regions of the cross-entropy against the readout tokens' mass (each
        target row sums to 1) or the background column."""
        if logits.shape[0] == 0:
            return logits.sum() * 0.0
        dist = targets / targets.sum(dim=1, keepdim=True).clamp(min=1e-12)
        dist = torch.cat([dist, (~in_prompt).to(dist)[:, None]], dim=1)
        keep = torch.cat([real, real.new_ones(1)])
        log_probs = logits.masked_fill(~keep, float("-inf")).log_softmax(dim=1)
        # padding columns: target 0, log-probability -inf -> leave them out of the sum
        return -(dist[:, keep] * log_probs[:, keep]).sum(dim=1).mean()

    def predict_probs(
        self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]
    ) -> list[torch.Tensor]:
        """Per image (Ri, P + 1) phrase scores, a zero background column last."""
        logits, _ = predictions
        text = self._context()
        out = []
        parts = logits.split([len(p) for p in proposals], dim=0)
        for part, (mask, phrase_map) in zip(parts, text.per_image(len(proposals))):
            phrase_map = phrase_map.to(part)
            if self.cls_loss == "softmax":  # the probability mass on each phrase's readout tokens
                probs = self._softmax_probs(part, mask.to(part.device))[:, :-1]
                scores = probs @ self.readout_map(phrase_map).T
            else:
                scores = aggregate_phrase_scores(part.sigmoid(), phrase_map, self.aggregation)
            out.append(torch.cat([scores, scores.new_zeros(scores.shape[0], 1)], dim=1))
        return out
