"""Fixtures of the text tests: a tiny random open_clip model and a counting fake encoder."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from ovdet.text import OpenCLIPTextEncoder, TextEncoder, tiny_clip_config


class CountingEncoder(TextEncoder):
    """Deterministic fake encoder: a text's vector is seeded by its SHA-256; counts calls."""

    def __init__(self, dim: int = 8, name: str = "counting") -> None:
        self._module = nn.Identity()
        self._dim = dim
        self._name = name
        self.batches: list[list[str]] = []
        self.encode_calls = 0

    @property
    def module(self) -> nn.Module:
        return self._module

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> str:
        return f"{self._name}:{self._dim}"

    def encode(self, texts, batch_size=256):
        self.encode_calls += 1
        return super().encode(texts, batch_size)

    def encode_batch(self, texts: list[str]) -> torch.Tensor:
        self.batches.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(torch.randn(self._dim, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(rows) * 3.0  # deliberately not normalised


@pytest.fixture
def counting_encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture(scope="session")
def clip_cfg() -> dict:
    return tiny_clip_config(embed_dim=32, image_size=32)


@pytest.fixture(scope="session")
def tiny_clip(clip_cfg) -> OpenCLIPTextEncoder:
    """A random 32-d CLIP text encoder on CPU (shared: encoding does not change it)."""
    return OpenCLIPTextEncoder.from_config(clip_cfg, seed=0, device="cpu")
