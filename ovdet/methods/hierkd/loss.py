"""HierKD's global (image-level) objective against caption embeddings (docs/methods.md#hierkd).

The official objective (mengqiDyangge/HierKD, ``mmdet/models/losses/kd_ins_loss.py``,
``Symmetric_CLLoss`` with ``type="caption"``, called from
``mmdet/models/dense_heads/atss_zsd_sfl_head.py::ATSSZSDSFLHead.loss``)::

    text_img_match = tem * <text-conditioned image feature, text>      (B_text, B_image)
    loss = loss_weight * (CE(text_img_match.T, arange B) + CE(text_img_match, arange B))

with ``tem = nn.Parameter(torch.tensor(dist_featuremap_tem))`` (10.0 in the
``distill_ins_and_featmap`` configs: a learnable scale, not its logarithm, not clamped),
``loss_weight = 1`` and the two directions SUMMED, over the images of one GPU (8 per GPU in
those configs; nothing is gathered across GPUs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ovdet.modeling.distill.functional import zero_loss
from ovdet.modeling.distill.gather import gather_rows

__all__ = ["HIERKD_REDUCTIONS", "HIERKD_SCALE_PARAMS", "HierKDGlobalDistillation"]

# "sum": CE(L) + CE(L^T) (official); "mean": their average (ovdet's earlier form, OV-Shapes).
HIERKD_REDUCTIONS = ("sum", "mean")
# "linear": the logit scale itself is learned (official); "log": its logarithm is learned and
# the scale clamped to <= 100 (CLIP's parametrisation; ovdet's earlier form, OV-Shapes).
HIERKD_SCALE_PARAMS = ("linear", "log")


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

    Loss, symmetric InfoNCE over the B images of the (global) batch::

        L = s * G T^T,  s = 1 / temperature (learned or fixed)
        loss_hierkd_global = weight * (CE(L, arange B) + CE(L^T, arange B))        reduction="sum"
                           = weight * (CE(L, arange B) + CE(L^T, arange B)) / 2    reduction="mean"

    where T (B, D) are the CLIP text embeddings of each image's caption (precomputed; one caption
    per image, chosen by the caller; normalised and detached here). CE is the mean over rows.

    **Official form** (the defaults; see the module docstring): the two directions summed,
    weight 1, a learnable scale initialised to 10 and learned as is (``scale_param="linear"``,
    not clamped). ovdet's earlier form, kept by the OV-Shapes HierKD configs so their results
    do not move, halves the sum (``reduction="mean"``) and learns ``log s`` with ``s`` clamped
    to at most 100 (``scale_param="log"``, CLIP's parametrisation).

    **Global batch** (``gather=True``): under torch.distributed the image embeddings, text
    embeddings and masks of every process are gathered (:func:`~ovdet.modeling.distill.gather.
    gather_rows`) so the InfoNCE sees the whole global batch (16 images in the OV-COCO configs
    instead of the 2 of one GPU), and the parameters get the gradient of that one loss (every
    process computes it; each differentiates its own images). This is an ovdet choice: the
    official code contrasts the 8 images of each GPU without gathering; with ovdet's 2 images
    per GPU a per-process InfoNCE has a single negative. ``gather=False`` contrasts each
    process's images only. In one process it makes no difference.

    Differences that remain (docs/methods.md#hierkd): the official student embedding of an
    image is text-conditioned (attention of each caption over max-pooled 3x3 patches of every
    FPN level of the one-stage classification branch, so the logit of (caption t, image i)
    uses a pooling of image i chosen by t); ovdet pools each image once, independently of the
    caption (attention with a learned query, or a mean).

    Degenerate batches: with fewer than two valid images (in the global batch) there are no
    negatives and InfoNCE is identically zero (log-softmax of one logit), so the loss is
    returned as a zero connected to the graph; no memory bank is kept. Identical captions inside
    a batch act as false negatives, as in CLIP training.

    Args:
        in_channels: channels per level (mapping, concatenation) or one int (averaging).
        embed_dim: D, the text embedding dimension.
        weight: loss weight (official: 1).
        temperature: initial softmax temperature, 1 / the initial scale (official: 0.1).
        learnable_temperature: learn the scale (official: True).
        pooling: "attention" or "mean".
        reduction: "sum" (official) or "mean" of the two directions.
        scale_param: "linear" (official: the scale is the parameter) or "log" (``log s`` is
            the parameter, ``s <= 100``).
        gather: contrast the global batch across processes (see above).
    """

    def __init__(
        self,
        in_channels: int | Mapping[str, int],
        embed_dim: int,
        *,
        weight: float = 1.0,
        temperature: float = 0.1,
        learnable_temperature: bool = True,
        pooling: str = "attention",
        reduction: str = "sum",
        scale_param: str = "linear",
        gather: bool = True,
    ) -> None:
        super().__init__()
        for name, value, choices in (
            ("pooling", pooling, ("attention", "mean")),
            ("reduction", reduction, HIERKD_REDUCTIONS),
            ("scale_param", scale_param, HIERKD_SCALE_PARAMS),
        ):
            if value not in choices:
                raise ValueError(
                    f"HierKDGlobalDistillation: {name} must be one of {choices}, got {value!r}."
                )
        if temperature <= 0:
            raise ValueError(
                f"HierKDGlobalDistillation: temperature must be > 0, got {temperature}."
            )
        self.pooling = pooling
        self.weight = float(weight)
        self.reduction = reduction
        self.scale_param = scale_param
        self.gather = bool(gather)
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
        # parameter / buffer name: "log_scale" (scale_param="log") or "scale" ("linear")
        name = "log_scale" if scale_param == "log" else "scale"
        value = torch.tensor(
            math.log(1.0 / temperature) if scale_param == "log" else 1.0 / temperature
        )
        if learnable_temperature:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value, persistent=False)
        self._scale_name = name

    @property
    def logit_scale(self) -> torch.Tensor:
        """``1 / temperature`` (with ``scale_param="log"``: clamped to at most 100)."""
        if self.scale_param == "log":
            return self.log_scale.exp().clamp(max=100.0)
        return self.scale

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

    def contrastive_loss(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The weighted symmetric InfoNCE of row-paired (N, D) unit embeddings (N >= 2)."""
        logits = self.logit_scale * image @ text.T
        target = torch.arange(image.shape[0], device=image.device)
        loss = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
        if self.reduction == "mean":
            loss = loss / 2
        return self.weight * loss

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
            ``{"loss_hierkd_global": scalar}`` (the same value in every process when gathering).
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
        if valid is None:
            valid = torch.ones(image.shape[0], dtype=torch.bool, device=image.device)
        else:
            valid = valid.to(device=image.device, dtype=torch.bool)
            if valid.shape != (image.shape[0],):
                raise ValueError(
                    f"HierKDGlobalDistillation: valid must be ({image.shape[0]},) bool, got "
                    f"{tuple(valid.shape)}."
                )
        connected = image
        if self.gather:
            # every process gathers, whatever its batch holds: a process that skipped this
            # would leave the others waiting
            image, text, valid = gather_rows(image), gather_rows(text), gather_rows(valid)
        image, text = image[valid], text[valid]
        if image.shape[0] < 2:
            # No negatives: InfoNCE is degenerate (identically 0); keep the graph connected.
            scale = getattr(self, self._scale_name)
            return {"loss_hierkd_global": zero_loss(connected) + 0.0 * scale.sum()}
        return {"loss_hierkd_global": self.contrastive_loss(image, text)}

    def extra_repr(self) -> str:
        return (
            f"pooling={self.pooling!r}, weight={self.weight}, reduction={self.reduction!r}, "
            f"scale_param={self.scale_param!r}, gather={self.gather}"
        )
