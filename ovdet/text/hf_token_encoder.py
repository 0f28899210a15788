"""``HFTokenEncoder``: per-token last hidden states of a ``transformers`` text model (BERT)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ovdet.text.encoder import default_device, module_device, state_dict_digest
from ovdet.text.token_encoder import (
    PromptTooLongError,
    TokenEncoder,
    TokenizedPrompt,
    build_prompt,
    char_spans_to_token_spans,
)

__all__ = ["HFTokenEncoder"]

# GLIP's and Grounding DINO's text length (BERT takes 512; their fusion is sized for 256)
DEFAULT_MAX_TOKENS = 256


class HFTokenEncoder(TokenEncoder):
    """The last hidden state of every token of a BERT-style ``transformers`` model.

    Phrases map to tokens through the fast tokenizer's character offsets, so multi-piece
    words and repeated words get exactly their own tokens.

    Args:
        name_or_path: a local model directory or a Hub name (names need network or the local
            Hugging Face cache; GLIP and Grounding DINO use ``bert-base-uncased``). Loads
            whichever of ``model`` / ``tokenizer`` is not given, and names the encoder.
        model: an already-built model returning ``last_hidden_state``.
        tokenizer: an already-built *fast* tokenizer (offsets are needed).
        device: where to encode (default: a loaded model goes to CUDA when available; a passed
            model stays where it is).
        max_tokens: the most tokens of one prompt (default 256, capped by the model's
            position embeddings).
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike,
        *,
        model: nn.Module | None = None,
        tokenizer=None,
        device: str | torch.device | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._name = str(name_or_path)
        source = self._name
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
            tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError(
                f"HFTokenEncoder needs a fast tokenizer (character offsets), got "
                f"{type(tokenizer).__name__}; load it with AutoTokenizer(..., use_fast=True)"
            )
        limit = int(getattr(model.config, "max_position_embeddings", max_tokens))
        if not 1 <= int(max_tokens) <= limit:
            raise ValueError(
                f"HFTokenEncoder: max_tokens={max_tokens} must be in [1, {limit}] (the model's "
                "position embeddings)"
            )
        self._model = model.to(target)
        self._tokenizer = tokenizer
        self._device = target
        self._max_tokens = int(max_tokens)
        self._period = len(tokenizer(".", add_special_tokens=False)["input_ids"])
        self._identity: str | None = None

    @property
    def module(self) -> nn.Module:
        return self._model

    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dim(self) -> int:
        return int(self._model.config.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def prompt_overhead(self) -> int:
        return int(self._tokenizer.num_special_tokens_to_add(pair=False))

    @property
    def identity(self) -> str:
        if self._identity is None:
            vocab = sorted(self._tokenizer.get_vocab().items())
            vocab_hash = hashlib.sha256(json.dumps(vocab).encode()).hexdigest()
            self._identity = (
                f"hf-tokens:{self._name}:max_tokens={self._max_tokens}"
                f":sha256:{state_dict_digest(self._model)}"
                f"|tokenizer:{type(self._tokenizer).__name__}:{vocab_hash}"
            )
        return self._identity

    def phrase_cost(self, phrase: str) -> int:
        return len(self._tokenizer(phrase, add_special_tokens=False)["input_ids"]) + self._period

    def _forward(self, text: str, char_spans: list, truncate: bool) -> TokenizedPrompt:
        enc = self._tokenizer(
            text,
            return_offsets_mapping=True,
            return_tensors="pt",
            truncation=truncate,
            max_length=self._max_tokens if truncate else None,
        )
        num = int(enc["input_ids"].shape[1])
        if num > self._max_tokens:  # a tokenizer that merges across separators differently
            raise PromptTooLongError(
                f"the prompt {text[:60]!r}... has {num} tokens, more than max_tokens="
                f"{self._max_tokens}; use fewer phrases per prompt"
            )
        offsets = [tuple(int(v) for v in o) for o in enc.pop("offset_mapping")[0].tolist()]
        spans = char_spans_to_token_spans(offsets, char_spans)
        enc = {k: v.to(self._device) for k, v in enc.items()}
        hidden = self._model(**enc).last_hidden_state[0]
        return TokenizedPrompt((), text, hidden, enc["attention_mask"][0].bool(), tuple(spans))

    def _encode_phrases(self, phrases: list[str]) -> TokenizedPrompt:
        text, char_spans = build_prompt(phrases)
        out = self._forward(text, char_spans, truncate=False)
        return TokenizedPrompt(tuple(phrases), out.text, out.features, out.mask, out.spans)

    def _encode_caption(self, caption: str, char_spans: list) -> TokenizedPrompt:
        out = self._forward(caption, char_spans, truncate=True)
        phrases = tuple(
            " ".join(caption[s:e] for s, e in ([p] if len(p) == 2 and isinstance(p[0], int) else p))
            for p in char_spans
        )
        return TokenizedPrompt(phrases, caption, out.features, out.mask, out.spans)
