"""Image-level distillation against captions (the machinery of HierKD's global level; its
objective lives in ``ovdet.methods.hierkd``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from .context import DistillContext

if TYPE_CHECKING:
    from ovdet.text import TextEncoder

__all__ = ["CHOOSE_MODES", "CaptionDistiller"]

CHOOSE_MODES = ("random", "first")


class CaptionDistiller(nn.Module):
    """Image-level distillation against captions (HierKD global level, docs/methods.md#hierkd).

    One caption per image is picked from its ``captions`` (``"first"``, or ``"random"`` with a
    generator seeded at construction and held by this module; its state is not checkpointed),
    encoded by the text encoder (an ``ovdet.text.TextEncoder``; encodings are memoised in a
    bounded per-instance LRU dict since captions repeat across epochs), and given with the
    backbone features to the objective. Images without captions (key absent, ``None``, empty
    list or only empty strings) are masked out through the objective's ``valid`` argument.

    Args:
        objective: :class:`~ovdet.modeling.distill.HierKDGlobalDistillation` (or any module
            ``(features, text_embeddings (N, D), valid (N,)) -> dict[str, Tensor]``); its
            parameters (pooling, projection) train with the detector.
        text_encoder: ``TextEncoder`` (``dim``, ``encode(list[str]) -> (K, D)``); not an
            ``nn.Module``, its weights are not part of the detector.
        caption_key: input-dict key holding the captions.
        choose: "random" or "first".
        seed: seed of the caption-choice generator.
        cache_size: number of encoded captions kept (LRU).
        in_features: feature maps given to the objective (default: all backbone outputs).
    """

    def __init__(
        self,
        objective: nn.Module,
        text_encoder: TextEncoder,
        *,
        caption_key: str = "captions",
        choose: str = "random",
        seed: int = 0,
        cache_size: int = 4096,
        in_features: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if choose not in CHOOSE_MODES:
            raise ValueError(
                f"CaptionDistiller: choose must be one of {CHOOSE_MODES}, got {choose!r}"
            )
        if cache_size < 0:
            raise ValueError(f"CaptionDistiller: cache_size must be >= 0, got {cache_size}")
        if not callable(getattr(text_encoder, "encode", None)):
            raise TypeError(
                "CaptionDistiller: text_encoder must be an ovdet.text.TextEncoder (with "
                f"encode(list[str])), got {type(text_encoder).__name__}"
            )
        self.objective = objective
        self.text_encoder = text_encoder
        self.caption_key = caption_key
        self.choose = choose
        self.cache_size = int(cache_size)
        self.in_features = None if in_features is None else list(in_features)
        self._generator = torch.Generator().manual_seed(int(seed))
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def _captions_of(self, x: dict, index: int) -> list[str]:
        value = x.get(self.caption_key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f"CaptionDistiller: input {index}: {self.caption_key!r} must be a list of "
                f"strings or a string, got {type(value).__name__}"
            )
        for j, c in enumerate(value):
            if not isinstance(c, str):
                raise TypeError(
                    f"CaptionDistiller: input {index}: {self.caption_key!r}[{j}] is a "
                    f"{type(c).__name__}, not a string"
                )
        return [c for c in value if c.strip()]

    def choose_captions(self, batched_inputs: list[dict]) -> list[str | None]:
        """One caption per image (None when it has none)."""
        chosen: list[str | None] = []
        for i, x in enumerate(batched_inputs):
            captions = self._captions_of(x, i)
            if not captions:
                chosen.append(None)
            elif self.choose == "first" or len(captions) == 1:
                chosen.append(captions[0])
            else:
                k = int(torch.randint(len(captions), (1,), generator=self._generator))
                chosen.append(captions[k])
        return chosen

    def encode(self, captions: list[str]) -> torch.Tensor:
        """(K,) captions -> (K, D) text embeddings (CPU, float32), through the LRU cache."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        fresh: dict[str, torch.Tensor] = {}
        if missing:
            emb = self.text_encoder.encode(missing)
            if emb.ndim != 2 or emb.shape[0] != len(missing):
                raise ValueError(
                    f"CaptionDistiller: text_encoder.encode returned shape {tuple(emb.shape)} "
                    f"for {len(missing)} captions"
                )
            fresh = dict(zip(missing, emb.detach().float().cpu()))
        rows = []
        for c in captions:
            row = fresh.get(c)
            if row is None:
                row = self._cache[c]
                self._cache.move_to_end(c)
            rows.append(row)
        if self.cache_size:
            for c, row in fresh.items():
                self._cache[c] = row
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return torch.stack(rows) if rows else torch.zeros(0, int(self.text_encoder.dim))

    def clear_cache(self) -> None:
        """Forget the memoised caption embeddings."""
        self._cache.clear()

    def forward(self, context: DistillContext) -> dict[str, torch.Tensor]:
        """Image-caption distillation loss of one training step.

        Args:
            context: the step; reads each input's captions and ``context.features``.

        Returns:
            the objective's ``loss_*`` dict (``loss_hierkd_global`` for HierKD).
        """
        features = context.features
        if self.in_features is not None:
            missing = [f for f in self.in_features if f not in features]
            if missing:
                raise KeyError(
                    f"CaptionDistiller: in_features {missing} are not backbone outputs "
                    f"{sorted(features)}"
                )
            features = {f: features[f] for f in self.in_features}
        chosen = self.choose_captions(context.batched_inputs)
        valid = torch.tensor([c is not None for c in chosen], dtype=torch.bool)
        dim = int(self.text_encoder.dim)
        text = torch.zeros(len(chosen), dim)
        if bool(valid.any()):
            text[valid] = self.encode([c for c in chosen if c is not None])
        device = next(iter(features.values())).device
        return self.objective(features, text.to(device), valid.to(device))

    def extra_repr(self) -> str:
        return (
            f"caption_key={self.caption_key!r}, choose={self.choose!r}, "
            f"cache_size={self.cache_size}, in_features={self.in_features}"
        )
