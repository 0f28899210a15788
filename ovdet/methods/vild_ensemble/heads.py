"""ViLD-ensemble inference (METHODS.md §2): geometric mix of text-head and image-head scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def vild_ensemble_scores(
    text_probs: torch.Tensor,
    image_probs: torch.Tensor,
    is_base: torch.Tensor,
    lam: float = 2.0 / 3.0,
) -> torch.Tensor:
    """Combine ViLD-text and ViLD-image class probabilities per class.

    ``p = p_text^lam * p_image^(1-lam)`` for base classes and
    ``p = p_text^(1-lam) * p_image^lam`` for novel classes (METHODS.md §2, lam = 2/3).

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
    """The separate image head of ViLD-ensemble and its score combination.

    A linear projection of region features gives the *image-head* embedding (trained with
    :class:`~ovdet.modeling.distill.ViLDImageDistillation` against CLIP, while the text head is
    trained with the classification loss). At inference its class probabilities
    ``softmax_c(cos(e_image, t_c) / temperature)`` over the C foreground classes are mixed with
    the text head's by :func:`vild_ensemble_scores`.

    Args:
        in_features: region feature size (box head output).
        embed_dim: D, the CLIP embedding dimension.
        temperature: softmax temperature of the image-head probabilities.
        lam: ensemble lambda (2/3 in ViLD).
    """

    def __init__(
        self,
        in_features: int,
        embed_dim: int,
        *,
        temperature: float = 0.01,
        lam: float = 2.0 / 3.0,
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, embed_dim)
        self.temperature = float(temperature)
        self.lam = float(lam)

    def embed(self, region_features: torch.Tensor) -> torch.Tensor:
        """(R, in_features) -> (R, D) L2-normalised image-head embeddings (the distilled ones)."""
        return F.normalize(self.proj(region_features), dim=-1)

    def image_probs(
        self, region_features: torch.Tensor, class_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """(R, in_features), (C, D) -> (R, C) image-head probabilities over the C classes."""
        classes = F.normalize(class_embeddings.to(region_features), dim=-1)
        return (self.embed(region_features) @ classes.T / self.temperature).softmax(dim=-1)

    def forward(
        self,
        region_features: torch.Tensor,
        text_probs: torch.Tensor,
        class_embeddings: torch.Tensor,
        is_base: torch.Tensor,
    ) -> torch.Tensor:
        """Ensembled scores.

        Args:
            region_features: (R, in_features) box-head features.
            text_probs: (R, C) text-head foreground probabilities.
            class_embeddings: (C, D) class text embeddings of the active vocabulary.
            is_base: (C,) bool.

        Returns:
            (R, C) ensembled scores.
        """
        return vild_ensemble_scores(
            text_probs, self.image_probs(region_features, class_embeddings), is_base, self.lam
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, lam={self.lam:.4g}"
