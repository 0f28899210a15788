"""Image-text contrastive losses for CLIP pretraining: ITC (InfoNCE) and SigLIP
(docs/methods.md#clip-basics).

Both take L2-normalised embeddings ``image_emb`` (B, D) and ``text_emb`` (B, D), row i of each
forming the i-th pair, and the *log* of the logit scale (the learnable parameter ``t`` of
open_clip's ``model.logit_scale``; the scale is ``s = exp(t)``).

Duplicate texts. Crop captions repeat class names ("a photo of a red circle." for every red
circle in the batch), so pair i's text is often an equally good match for image j. Treating
those as negatives pushes apart embeddings of the same class. Both losses accept an optional
``positive_ids`` (B,) integer tensor: pairs i, j with ``positive_ids[i] == positive_ids[j]``
are positives of each other (e.g. the class index for crop captions, a unique id for free-form
captions). Without it, only the diagonal is positive and the losses are exactly the standard ones.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["MAX_LOGIT_SCALE", "itc_loss", "positive_mask", "siglip_loss"]

# CLIP clamps the learned logit scale at 100, i.e. its log at log(100).
MAX_LOGIT_SCALE = math.log(100.0)


def positive_mask(positive_ids: Optional[torch.Tensor], batch_size: int, device) -> torch.Tensor:
    """(B, B) bool mask of positive pairs: the diagonal, plus equal ``positive_ids``.

    Args:
        positive_ids: (B,) integer ids or None (diagonal only).
        batch_size: B.
        device: device of the mask.
    """
    if positive_ids is None:
        return torch.eye(batch_size, dtype=torch.bool, device=device)
    if positive_ids.shape != (batch_size,):
        raise ValueError(
            f"positive_ids must have shape ({batch_size},) to match the batch, "
            f"got {tuple(positive_ids.shape)}"
        )
    ids = positive_ids.to(device)
    return ids[:, None] == ids[None, :]


def _check_pair(image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
    if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(
            "image_emb and text_emb must both be (B, D) with the same shape, got "
            f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )


def itc_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor,
    *,
    positive_ids: Optional[torch.Tensor] = None,
    max_logit_scale: float = MAX_LOGIT_SCALE,
) -> torch.Tensor:
    """Symmetric InfoNCE: ``(CE(L, targets) + CE(L^T, targets^T)) / 2``, ``L = s * I T^T``.

    ``s = exp(min(logit_scale, max_logit_scale))`` (CLIP's clamp at 100; no gradient flows to
    ``logit_scale`` while it is clamped). Targets are one-hot on the diagonal
    or, with ``positive_ids``, the uniform distribution over each row's positives
    (multi-positive InfoNCE): row i's target is ``1/|P_i|`` on every j with the same id. The
    positive relation is symmetric, so the text->image direction uses the same targets.

    Args:
        image_emb: (B, D) L2-normalised image embeddings.
        text_emb: (B, D) L2-normalised text embeddings; row i pairs with image row i.
        logit_scale: scalar (or shape (1,)) tensor, log of the logit scale.
        positive_ids: optional (B,) ids; equal ids are positives of each other.
        max_logit_scale: clamp of ``logit_scale`` (default log(100)).

    Returns:
        Scalar loss.
    """
    _check_pair(image_emb, text_emb)
    batch = image_emb.shape[0]
    scale = logit_scale.clamp(max=max_logit_scale).exp().reshape(())
    logits = scale * image_emb @ text_emb.t()
    if positive_ids is None:
        labels = torch.arange(batch, device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    pos = positive_mask(positive_ids, batch, logits.device).to(logits.dtype)
    targets = pos / pos.sum(dim=1, keepdim=True)
    loss_i2t = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_t2i = -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (loss_i2t + loss_t2i) / 2


def siglip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor,
    logit_bias: torch.Tensor,
    *,
    positive_ids: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """SigLIP pairwise sigmoid loss: ``-sum(log_sigmoid(z * L)) / B``, ``L = s * I T^T + b``.

    Labels ``z = 2 * eye(B) - 1``, or with ``positive_ids`` ``z_ij = +1`` where
    the ids are equal and -1 elsewhere. ``s = exp(logit_scale)``, unclamped as in the paper
    (the training loop keeps the parameter in [0, log 100], as open_clip does).

    Args:
        image_emb: (B, D) L2-normalised image embeddings.
        text_emb: (B, D) L2-normalised text embeddings.
        logit_scale: scalar tensor, log of the logit scale.
        logit_bias: scalar tensor, additive logit bias ``b``.
        positive_ids: optional (B,) ids; equal ids are positives of each other.

    Returns:
        Scalar loss.
    """
    _check_pair(image_emb, text_emb)
    batch = image_emb.shape[0]
    logits = logit_scale.exp().reshape(()) * image_emb @ text_emb.t() + logit_bias.reshape(())
    z = positive_mask(positive_ids, batch, logits.device).to(logits.dtype) * 2 - 1
    return -F.logsigmoid(z * logits).sum() / batch
