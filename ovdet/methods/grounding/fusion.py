"""GLIP-style deep fusion: bidirectional cross-attention between FPN features and tokens.

Placement: on the FPN outputs, before the RPN (``GroundingRCNN``). GLIP fuses inside its
one-stage head and Grounding DINO in its encoder, i.e. before anything proposes or scores a
box; in a two-stage detector the equivalent point is the FPN output, so that the proposals
(RPN) and the pooled region features (ROI heads) are both text-conditioned. Fusing after ROI
pooling instead would leave the proposals blind to the prompt and cost one attention per
region; fusing inside the backbone would re-run the backbone per prompt chunk, which is what
makes GLIP slow on large vocabularies. With fusion on the FPN outputs the backbone runs once
per image and only fusion and heads run per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ATTENTION_MODES", "BiAttentionLayer", "FeatureTextFusion", "LOGIT_CLAMP"]

LOGIT_CLAMP = 50000.0  # GLIP / Grounding DINO: keeps fp16 logits finite
ATTENTION_MODES = ("fused", "explicit")


class BiAttentionLayer(nn.Module):
    """One bidirectional cross-attention layer (GLIP's X-MHA) with pre-norm and layer scale.

    With O the image positions and P the tokens, per head::

        A = (LN(O) W_q)(LN(P) W_k)^T / sqrt(d_head)           one logit matrix, both directions
        O <- O + g_o * softmax_tokens(A) (LN(P) W_v) W_o         padded tokens masked out
        P <- P + g_p * softmax_positions(A^T) (LN(O) W_v') W_o'
        P <- P + g_f * FFN(LN(P))                                 the text layer

    ``g_*`` are per-channel layer scales initialised small (GLIP: 1e-4), so an untrained
    fusion starts as the identity. Logits are clamped to +-50000 (the explicit path below).

    Two ways to compute the two attentions, the same numbers up to rounding:

    - ``"fused"`` (default): each direction is one
      :func:`torch.nn.functional.scaled_dot_product_attention` call (image -> tokens with the
      padding mask, tokens -> image on the transposed product), which never stores A. Both
      calls compute the same logits; the kernels normalise with the row maximum subtracted,
      so the logits cannot overflow and the clamp (whose purpose is finite fp16 logits) is
      not applied: the two modes differ only where ``|A| > 50000``.
    - ``"explicit"``: the reference. A is built once (N, heads, HW, L), clamped, and
      normalised along each axis. It holds N * heads * HW * L floats (at 800x1333 over P3-P6
      with 256 tokens, 23 M per image and layer), read and written several times: slower
      than the fused kernels (measured in docs/grounding.md, Speed). The OV-Shapes grounding
      results recorded before the fused mode existed were trained with it; it reproduces
      them exactly.

    Args:
        image_dim: channels C of the image features.
        text_dim: channels D of the tokens.
        embed_dim: attention width (split over ``num_heads``).
        num_heads: attention heads.
        layer_scale: initial value of the layer scales.
        ffn_dim: hidden width of the text FFN (0: none).
        attention: ``"fused"`` or ``"explicit"`` (above).
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        *,
        embed_dim: int = 128,
        num_heads: int = 4,
        layer_scale: float = 1e-4,
        ffn_dim: int = 512,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(
                f"BiAttentionLayer: attention must be one of {ATTENTION_MODES}, got {attention!r}"
            )
        self.attention = attention
        if embed_dim % num_heads:
            raise ValueError(
                f"BiAttentionLayer: embed_dim={embed_dim} is not divisible by num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.norm_image = nn.LayerNorm(image_dim)
        self.norm_text = nn.LayerNorm(text_dim)
        self.query_image = nn.Linear(image_dim, embed_dim)
        self.key_text = nn.Linear(text_dim, embed_dim)
        self.value_text = nn.Linear(text_dim, embed_dim)
        self.value_image = nn.Linear(image_dim, embed_dim)
        self.out_image = nn.Linear(embed_dim, image_dim)
        self.out_text = nn.Linear(embed_dim, text_dim)
        self.gamma_image = nn.Parameter(torch.full((image_dim,), float(layer_scale)))
        self.gamma_text = nn.Parameter(torch.full((text_dim,), float(layer_scale)))
        if ffn_dim > 0:
            self.ffn = nn.Sequential(
                nn.LayerNorm(text_dim),
                nn.Linear(text_dim, ffn_dim),
                nn.GELU(),
                nn.Linear(ffn_dim, text_dim),
            )
            self.gamma_ffn = nn.Parameter(torch.full((text_dim,), float(layer_scale)))
        else:
            self.ffn = None
        for lin in (self.query_image, self.key_text, self.value_text, self.value_image):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        return x.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        n, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(n, length, self.num_heads * self.head_dim)

    def project_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image side's query (scaled by ``1/sqrt(d_head)``) and value, each
        (N, heads, HW, d_head), from one LayerNorm of ``image``. They depend on the image alone,
        so the first layer's can be computed once and reused for every prompt chunk
        (:class:`FeatureTextFusion` ``cache``)."""
        normed = self.norm_image(image)
        query = self._heads(self.query_image(normed)) * self.head_dim**-0.5
        return query, self._heads(self.value_image(normed))

    def attention_logits(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(N, heads, HW, L) shared logits A (clamped)."""
        query, _ = self.project_image(image)
        return self._logits(query, text)

    def _key(self, text: torch.Tensor) -> torch.Tensor:
        return self._heads(self.key_text(self.norm_text(text)))

    def _logits(self, query: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return (query @ self._key(text).transpose(-1, -2)).clamp(-LOGIT_CLAMP, LOGIT_CLAMP)

    def forward(
        self,
        image: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        image_proj: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            image: (N, HW, C) image positions (all fused FPN levels, concatenated).
            text: (N, L, D) tokens.
            text_mask: (N, L) bool, True for real tokens (at least one per row).
            image_proj: :meth:`project_image` of ``image`` when already computed.

        Returns:
            the updated ``image`` (N, HW, C) and ``text`` (N, L, D).
        """
        query, value_image = image_proj if image_proj is not None else self.project_image(image)
        value_text = self._heads(self.value_text(self.norm_text(text)))
        padded = not bool(text_mask.all())  # no padding: nothing to mask
        if self.attention == "fused":
            key = self._key(text)
            mask = text_mask[:, None, None, :] if padded else None
            # the query already carries 1/sqrt(d_head): scale 1 in both calls
            to_tokens = F.scaled_dot_product_attention(
                query, key, value_text, attn_mask=mask, scale=1.0
            )
            to_image = F.scaled_dot_product_attention(key, query, value_image, scale=1.0)
        else:
            logits = self._logits(query, text)  # (N, h, HW, L)
            weights = logits
            if padded:
                weights = logits.masked_fill(~text_mask[:, None, None, :], float("-inf"))
            to_tokens = weights.softmax(dim=-1) @ value_text
            # The text side reads the same logits, normalised over image positions.
            # Transposed first, so that the softmax runs over the last (contiguous) dimension:
            # a softmax over dim -2 of (N, h, HW, L) reduces HW-long strided columns, only
            # N*h*L of them, which leaves most of a GPU idle (docs/grounding.md, Speed).
            to_image = logits.transpose(-1, -2).softmax(dim=-1) @ value_image  # (N, h, L, d)
        image_update = self.out_image(self._merge(to_tokens))
        text_update = self.out_text(self._merge(to_image))
        image = image + self.gamma_image * image_update
        text = text + self.gamma_text * text_update
        if self.ffn is not None:
            text = text + self.gamma_ffn * self.ffn(text)
        return image, text


class FeatureTextFusion(nn.Module):
    """K :class:`BiAttentionLayer` on the FPN outputs (all ``in_features`` levels at once).

    The levels are flattened and concatenated, so a token's update attends over every
    position of every level (one softmax), while each position attends over the tokens.
    ``num_layers=0`` is the no-fusion ablation: features and tokens pass through unchanged.

    Args:
        in_features: FPN levels to fuse (e.g. ``["p2", ..., "p6"]``); other levels pass through.
        image_dim: FPN channels.
        text_dim: token channels.
        num_layers: K.
        embed_dim, num_heads, ffn_dim: per layer (see :class:`BiAttentionLayer`).
        layer_scale: initial layer scale; default ``1e-4`` (GLIP).
        attention: how each layer computes its attention (:class:`BiAttentionLayer`).
    """

    def __init__(
        self,
        *,
        in_features: Sequence[str],
        image_dim: int,
        text_dim: int,
        num_layers: int,
        embed_dim: int = 128,
        num_heads: int = 4,
        ffn_dim: int = 512,
        layer_scale: float = 1e-4,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"FeatureTextFusion: num_layers must be >= 0, got {num_layers}")
        self.in_features = list(in_features)
        self.layers = nn.ModuleList(
            BiAttentionLayer(
                image_dim,
                text_dim,
                embed_dim=embed_dim,
                num_heads=num_heads,
                layer_scale=layer_scale,
                ffn_dim=ffn_dim,
                attention=attention,
            )
            for _ in range(num_layers)
        )

    def forward(
        self,
        features: dict[str, torch.Tensor],
        text: torch.Tensor,
        text_mask: torch.Tensor,
        cache: dict | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """
        Args:
            features: FPN maps by name, each (N, C, H, W).
            text: (B, L, D) tokens: B = N (one prompt per image), 1 (one prompt shared by the
                batch) or G * N (G prompts at once, prompt-major: row ``g * N + n`` is prompt
                g on image n; the image positions are then repeated G times).
            text_mask: (B, L) bool, True for real tokens.
            cache: a dict kept by the caller across calls on the SAME ``features`` (the prompt
                chunks of one image batch): the flattened positions and the first layer's
                image projections are computed on the first call and reused (exact; they do
                not depend on the text). Inference only.

        Returns:
            fused features and (max(B, N), L, D) fused tokens. The fused levels have batch
            max(B, N); the levels not in ``in_features`` are returned as given (batch N).
        """
        n = next(iter(features.values())).shape[0]
        batch = max(text.shape[0], n)
        if batch % n or text.shape[0] not in (1, batch):
            raise ValueError(
                f"FeatureTextFusion: {text.shape[0]} token rows for {n} images; expected 1, "
                f"{n} or a multiple of {n} (several prompts per image)"
            )
        repeats = batch // n
        text = text.expand(batch, -1, -1)
        text_mask = text_mask.expand(batch, -1)
        if not len(self.layers):
            return features, text
        missing = [f for f in self.in_features if f not in features]
        if missing:
            raise KeyError(f"FeatureTextFusion: levels {missing} not in {sorted(features)}")
        shapes = [features[f].shape for f in self.in_features]
        if cache is not None and cache.get("features") is features:
            image, first = cache["image"], cache["first"]
        else:
            image = torch.cat([features[f].flatten(2).transpose(1, 2) for f in self.in_features], 1)
            first = self.layers[0].project_image(image)
            if cache is not None:
                if torch.is_grad_enabled():
                    raise RuntimeError("FeatureTextFusion: the cache is for inference (no_grad)")
                cache.update(features=features, image=image, first=first)
        if repeats > 1:  # G prompts: each image's positions once per prompt, prompt-major
            image = image.repeat(repeats, 1, 1)
            first = tuple(t.repeat(repeats, 1, 1, 1) for t in first)
        for i, layer in enumerate(self.layers):
            image, text = layer(image, text, text_mask, first if i == 0 else None)
        out = dict(features)
        sizes = [s[2] * s[3] for s in shapes]
        for name, shape, part in zip(self.in_features, shapes, image.split(sizes, dim=1)):
            out[name] = part.transpose(1, 2).reshape(batch, *shape[1:])
        return out, text
