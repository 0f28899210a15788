"""HierKD's global (image-level) objective against caption embeddings (docs/methods.md#hierkd)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ovdet.modeling.distill.functional import zero_loss

__all__ = ["HierKDGlobalDistillation"]


class _QueryAttentionPool(nn.Module):
    """Single-head attention pooling of a (B, C, H, W) map with one learned query.

    ``a = softmax_hw(<q, W_k x_hw> / sqrt(C))``, output ``sum_hw a_hw x_hw`` -> (B, C).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(channels) * channels**-0.5)
        self.key = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        logits = self.key(tokens) @ self.query / math.sqrt(tokens.shape[-1])  # (B, HW)
        return (logits.softmax(dim=1).unsqueeze(-1) * tokens).sum(dim=1)


class HierKDGlobalDistillation(nn.Module):
    """HierKD global level: image embedding from multi-scale features vs caption embedding.

    Student image embedding ``g_i``: each feature level is pooled to a vector (mean over H, W, or
    attention pooling with a learned query), the level vectors are combined, projected to D by a
    linear layer and L2-normalised. Levels are combined by

    - concatenation (in the order of ``in_channels``) when ``in_channels`` is a mapping
      ``{level name: channels}``, e.g. ``{k: s.channels for k, s in backbone.output_shape()}``;
    - averaging (over whatever levels are passed) when ``in_channels`` is one int (all levels
      share the channel count and, with attention pooling, the query).

    Loss, symmetric InfoNCE over the B images of the batch::

        L = s * G T^T,  s = 1 / temperature
        loss_hierkd_global = weight * (CE(L, arange B) + CE(L^T, arange B)) / 2

    where T (B, D) are the CLIP text embeddings of each image's caption (precomputed; one caption
    per image, chosen by the caller; normalised and detached here).

    Degenerate batches: with fewer than two valid images there are no negatives and InfoNCE is
    identically zero (log-softmax of one logit), so the loss is returned as a zero connected to
    the graph; no memory bank is kept. Identical captions inside a batch act as false negatives,
    as in CLIP training.

    Args:
        in_channels: channels per level (mapping, concatenation) or one int (averaging).
        embed_dim: D, the text embedding dimension.
        weight: loss weight.
        temperature: initial softmax temperature (0.07 as CLIP's initial value).
        learnable_temperature: learn ``log(1/temperature)`` (clamped so that 1/temperature <= 100).
        pooling: "attention" or "mean".
    """

    def __init__(
        self,
        in_channels: int | Mapping[str, int],
        embed_dim: int,
        *,
        weight: float = 1.0,
        temperature: float = 0.07,
        learnable_temperature: bool = False,
        pooling: str = "attention",
    ) -> None:
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(
                f"HierKDGlobalDistillation: pooling must be 'attention' or 'mean', got {pooling!r}."
            )
        if temperature <= 0:
            raise ValueError(
                f"HierKDGlobalDistillation: temperature must be > 0, got {temperature}."
            )
        self.pooling = pooling
        self.weight = float(weight)
        if isinstance(in_channels, Mapping):
            if not in_channels:
                raise ValueError("HierKDGlobalDistillation: in_channels mapping is empty.")
            self.levels: tuple[str, ...] | None = tuple(in_channels)
            pooled_dim = sum(int(c) for c in in_channels.values())
            if pooling == "attention":
                self.pools = nn.ModuleDict(
                    {name: _QueryAttentionPool(int(c)) for name, c in in_channels.items()}
                )
        else:
            self.levels = None
            pooled_dim = int(in_channels)
            if pooling == "attention":
                self.pool = _QueryAttentionPool(pooled_dim)
        self.in_dim = pooled_dim
        self.proj = nn.Linear(pooled_dim, embed_dim)
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale, persistent=False)

    @property
    def logit_scale(self) -> torch.Tensor:
        """``1 / temperature`` (clamped to at most 100)."""
        return self.log_scale.exp().clamp(max=100.0)

    def _pool_level(self, x: torch.Tensor, name: str | None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(
                f"HierKDGlobalDistillation: feature {name!r} must be (B, C, H, W), got "
                f"{tuple(x.shape)}."
            )
        if self.pooling == "mean":
            return x.mean(dim=(2, 3))
        return (self.pools[name] if self.levels is not None else self.pool)(x)

    def embed(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Image-level student embeddings.

        Args:
            features: level name -> (B, C_l, H_l, W_l) maps (e.g. FPN outputs).

        Returns:
            (B, D) L2-normalised embeddings ``g``.
        """
        if self.levels is not None:
            missing = [name for name in self.levels if name not in features]
            if missing:
                raise KeyError(
                    f"HierKDGlobalDistillation: features lack levels {missing}; got "
                    f"{sorted(features)}, expected {list(self.levels)} (from in_channels)."
                )
            pooled = torch.cat([self._pool_level(features[n], n) for n in self.levels], dim=1)
        else:
            if not features:
                raise ValueError("HierKDGlobalDistillation: features is empty.")
            pooled = torch.stack(
                [self._pool_level(x, name) for name, x in features.items()], dim=0
            ).mean(dim=0)
        if pooled.shape[1] != self.in_dim:
            raise ValueError(
                f"HierKDGlobalDistillation: pooled features have {pooled.shape[1]} channels, "
                f"in_channels says {self.in_dim}."
            )
        return F.normalize(self.proj(pooled), dim=-1)

    def forward(
        self,
        features: Mapping[str, torch.Tensor],
        text_embeddings: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            features: level name -> (B, C_l, H_l, W_l) maps.
            text_embeddings: (B, D) CLIP text embeddings of each image's caption (detached).
            valid: optional (B,) bool, False for images without a caption (their rows of
                ``text_embeddings`` are ignored).

        Returns:
            ``{"loss_hierkd_global": scalar}``.
        """
        image = self.embed(features)
        if text_embeddings.ndim != 2 or text_embeddings.shape != image.shape:
            raise ValueError(
                f"HierKDGlobalDistillation: text_embeddings must be (B, D) = "
                f"{tuple(image.shape)} (one caption per image), got "
                f"{tuple(text_embeddings.shape)}."
            )
        text = F.normalize(
            text_embeddings.detach().to(device=image.device, dtype=image.dtype), dim=-1
        )
        if valid is not None:
            valid = valid.to(device=image.device, dtype=torch.bool)
            if valid.shape != (image.shape[0],):
                raise ValueError(
                    f"HierKDGlobalDistillation: valid must be ({image.shape[0]},) bool, got "
                    f"{tuple(valid.shape)}."
                )
            connected = image
            image, text = image[valid], text[valid]
        else:
            connected = image
        num = image.shape[0]
        if num < 2:
            # No negatives: InfoNCE is degenerate (identically 0); keep the graph connected.
            return {"loss_hierkd_global": zero_loss(connected) + 0.0 * self.log_scale.sum()}
        logits = self.logit_scale * image @ text.T
        target = torch.arange(num, device=image.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        return {"loss_hierkd_global": self.weight * loss}

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, weight={self.weight}"
