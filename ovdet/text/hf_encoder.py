"""``HFTextEncoder``: a Hugging Face ``transformers`` text model with mean or CLS pooling."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ovdet.text.encoder import TextEncoder, default_device, module_device, state_dict_digest

POOLINGS = ("mean", "cls")


class HFTextEncoder(TextEncoder):
    """Encodes text with ``AutoModel`` + ``AutoTokenizer`` and pools the last hidden states.

    Args:
        name_or_path: a local model directory or a Hub name (names need network or the local
            HF cache). Used to load whichever of ``model``/``tokenizer`` is not given, and
            as the encoder's name.
        pooling: ``"mean"`` (mean over non-padding tokens, via the attention mask) or
            ``"cls"`` (the first token's hidden state).
        model: an already-built ``transformers`` model returning ``last_hidden_state``.
        tokenizer: an already-built ``transformers`` tokenizer.
        device: where to encode. Default: a loaded model goes to ``cuda`` when available,
            else ``cpu``; a passed ``model`` stays on its current device.
        max_length: truncate texts to this many tokens (default: the tokenizer's limit).

    ``identity`` combines the pooling, a SHA-256 of the model's state dict and a hash of the
    tokenizer's vocabulary, computed on first use and memoised.
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike,
        *,
        pooling: str = "mean",
        model: nn.Module | None = None,
        tokenizer=None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self._name = str(name_or_path)
        source = str(name_or_path)
        if model is None or tokenizer is None:
            looks_local = Path(source).exists() or source.startswith((".", "/", "~"))
            if looks_local and not Path(source).expanduser().is_dir():
                raise FileNotFoundError(f"Hugging Face model directory {source} not found")
            source = str(Path(source).expanduser()) if looks_local else source
        if model is None:
            model = AutoModel.from_pretrained(source)
            target = torch.device(device) if device is not None else default_device()
        else:
            target = torch.device(device) if device is not None else module_device(model)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(source)
        self._model = model.to(target)
        self._tokenizer = tokenizer
        self._device = target
        self._pooling = pooling
        self._max_length = max_length
        self._identity: str | None = None

    @property
    def module(self) -> nn.Module:
        return self._model

    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def pooling(self) -> str:
        return self._pooling

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dim(self) -> int:
        return int(self._model.config.hidden_size)

    @property
    def identity(self) -> str:
        if self._identity is None:
            vocab = sorted(self._tokenizer.get_vocab().items())
            vocab_hash = hashlib.sha256(json.dumps(vocab).encode()).hexdigest()
            self._identity = (
                f"hf:{self._name}:pooling={self._pooling}:max_length={self._max_length}"
                f":sha256:{state_dict_digest(self._model)}"
                f"|tokenizer:{type(self._tokenizer).__name__}:{vocab_hash}"
            )
        return self._identity

    def encode_batch(self, texts: list[str]) -> torch.Tensor:
        """Returns (len(texts), hidden_size) pooled last hidden states."""
        inputs = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        ).to(self._device)
        hidden = self._model(**inputs).last_hidden_state  # (B, L, H)
        if self._pooling == "cls":
            return hidden[:, 0]
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
