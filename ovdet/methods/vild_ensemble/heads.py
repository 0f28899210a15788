"""ViLD-ensemble's image head and its inference rule: a geometric mix of the text-head and
image-head class probabilities (docs/methods.md#vild-ensemble)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VILD_LAMBDA", "ViLDEnsembleHead", "vild_ensemble_scores"]

# ViLD's ensemble weight: the text head weighs 2/3 for base classes, 1/3 for novel ones
VILD_LAMBDA = 2.0 / 3.0


def vild_ensemble_scores(
    text_probs: torch.Tensor,
    image_probs: torch.Tensor,
    is_base: torch.Tensor,
    lam: float = VILD_LAMBDA,
) -> torch.Tensor:
    """Combine ViLD-text and ViLD-image class probabilities per class.

    ``p = p_text^lam * p_image^(1-lam)`` for base classes and
    ``p = p_text^(1-lam) * p_image^lam`` for novel classes (lam = 2/3 in ViLD).

    Args:
        text_probs: (R, C) text-head probabilities of the C foreground classes (drop a
            background column before calling).
        image_probs: (R, C) image-head probabilities of the same classes.
        is_base: (C,) bool, True for base (trained-with-boxes) classes.
        lam: lambda in [0, 1].

    Returns:
        (R, C) ensembled scores.
    """
    if text_probs.shape != image_probs.shape or text_probs.ndim != 2:
        raise ValueError(
            f"vild_ensemble_scores: text_probs and image_probs must both be (R, C), got "
            f"{tuple(text_probs.shape)} and {tuple(image_probs.shape)}."
        )
    if is_base.shape != (text_probs.shape[1],):
        raise ValueError(
            f"vild_ensemble_scores: is_base must be ({text_probs.shape[1]},) (one flag per "
            f"class column), got {tuple(is_base.shape)}."
        )
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"vild_ensemble_scores: lam must be in [0, 1], got {lam}.")
    base = is_base.to(device=text_probs.device, dtype=torch.bool)
    # exponent of p_text: lam for base classes, 1 - lam for novel ones
    text_exp = base.to(text_probs.dtype) * (2.0 * lam - 1.0) + (1.0 - lam)
    return text_probs.pow(text_exp) * image_probs.pow(1.0 - text_exp)


class ViLDEnsembleHead(nn.Module):
    """The image head of ViLD-ensemble: a projection to the teacher's (CLIP) space, its class
    logits, and the score combination with the text head.

    A linear projection of the image box head's features gives the *image-head* embedding,
    trained only by region distillation against the teacher (while the text head is trained
    by the classification loss). At inference its class probabilities
    ``softmax_c(cos(e_image, t_c) / temperature)`` over the C foreground classes are mixed
    with the text head's by :func:`vild_ensemble_scores` (docs/methods.md#vild-ensemble).

    Args:
        in_features: region feature size (the image box head's output).
        embed_dim: D, the teacher embedding dimension.
        temperature: softmax temperature of the image-head probabilities (ViLD: 0.01, the
            inverse of OpenAI CLIP's logit scale; use 1 / your teacher's logit scale).
        lam: ensemble lambda (2/3 in ViLD).
    """

    def __init__(
        self,
        in_features: int,
        embed_dim: int,
        *,
        temperature: float = 0.01,
        lam: float = VILD_LAMBDA,
    ) -> None:
        super().__init__()
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(
                f"ViLDEnsembleHead: temperature must be a positive number, got {temperature}"
            )
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"ViLDEnsembleHead: lam must be in [0, 1], got {lam}")
        self.proj = nn.Linear(in_features, embed_dim)
        self.temperature = float(temperature)
        self.lam = float(lam)

    def embed(self, region_features: torch.Tensor) -> torch.Tensor:
        """(R, in_features) -> (R, D) L2-normalised image-head embeddings (the distilled ones)."""
        return F.normalize(self.proj(region_features), dim=-1)

    def logits(self, region_features: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        """(R, in_features), (C, D) -> (R, C) image-head logits ``cos(e_image, t_c) / tau``."""
        classes = F.normalize(class_embeddings.to(region_features), dim=-1)
        return self.embed(region_features) @ classes.T / self.temperature

    def combine(
        self, text_probs: torch.Tensor, image_logits: torch.Tensor, is_base: torch.Tensor
    ) -> torch.Tensor:
        """Ensembled scores (R, C) from the text head's foreground probabilities (R, C) and
        the image head's logits (R, C), given which classes are base ((C,) bool)."""
        return vild_ensemble_scores(text_probs, image_logits.softmax(dim=-1), is_base, self.lam)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, lam={self.lam:.4g}"
