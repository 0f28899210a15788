"""``OpenCLIPTokenEncoder``: token states of an open_clip text tower, phrase by phrase.

CLIP's text transformer is causal and short (77 positions; 32 for the OV-Shapes teacher), and
its training only ever read the end-of-text (EOT) state. A whole prompt of class names does
not fit it, and the word states inside one long causal sequence are not what CLIP learned to
align with images. So this encoder runs the tower once per phrase (as YOLO-World does for its
frozen CLIP vocabulary) and concatenates, phrase after phrase, the projected states of the
phrase's word tokens and of its EOT token (whose projection is CLIP's sentence embedding of
the phrase). The start token, identical for every phrase, is left out. A phrase's span is its
word tokens plus its EOT; the token budget of a prompt is :attr:`max_tokens` (the fusion's,
not the tower's, which only bounds single phrases).

:meth:`~ovdet.text.TokenEncoder.encode_sentences` gives the EOT states alone: one token per
phrase, the phrase's CLIP sentence embedding (what ViLD-text's classifier is made of).

A caption (:meth:`~ovdet.text.TokenEncoder.encode_caption`, grounding data) is read whole, in
one pass, as CLIP's text tower was trained on captions: its word states and its EOT state;
character spans are mapped to tokens through the offsets of the words the standard CLIP BPE
tokenizer splits the text into (each word piece gets its word's characters). Words past the
context length are cut off (a phrase among them is refused, as a truncated prompt is).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable

import torch
from torch import nn

from ovdet.text.clip_models import (
    ConfigLike,
    create_clip_from_config,
    create_clip_tokenizer,
    load_clip_config,
)
from ovdet.text.encoder import default_device, file_identity, module_device, state_dict_digest
from ovdet.text.known_tokens import KnownTokens
from ovdet.text.token_encoder import (
    PromptTooLongError,
    TokenEncoder,
    TokenizedPrompt,
    char_spans_to_token_spans,
)
from ovdet.utils.errors import InputError

__all__ = ["OpenCLIPTokenEncoder"]


def _find(model: nn.Module, name: str):
    for owner in (model, getattr(model, "text", None)):
        if owner is not None and getattr(owner, name, None) is not None:
            return getattr(owner, name)
    return None


class OpenCLIPTokenEncoder(TokenEncoder):
    """Per-token features of an open_clip CLIP text tower (see the module docstring).

    Args:
        model: an open_clip model with ``encode_text`` and an ``ln_final`` (its own or its
            ``text`` tower's).
        tokenizer: open_clip tokenizer, ``list[str] -> LongTensor (N, context_length)``.
        device: where to encode (default: where the model is).
        max_tokens: the most tokens of one prompt (all its phrases together).
        identity: names the weights; default a SHA-256 of the state dict (memoised).
        template: each phrase is read as ``template.format(phrase)`` (``"{}"``: bare).
        known_tokens: the token ids the model has embedding rows for, when its token table
            is pruned (a model bundle's text tower): phrases and captions needing others are
            refused (:class:`~ovdet.text.known_tokens.UnknownTokensError`). ``None`` (a full
            model): no check.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        device: str | torch.device | None = None,
        max_tokens: int = 256,
        identity: str | None = None,
        template: str = "{}",
        known_tokens: KnownTokens | None = None,
    ) -> None:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(
                f"OpenCLIPTokenEncoder: template {template!r} must contain '{{}}' exactly once"
            )
        if not hasattr(model, "encode_text") or _find(model, "ln_final") is None:
            raise TypeError(
                f"OpenCLIPTokenEncoder: {type(model).__name__} is not an open_clip CLIP model "
                "(no encode_text / ln_final)"
            )
        if int(max_tokens) < 2:
            raise ValueError(f"OpenCLIPTokenEncoder: max_tokens must be >= 2, got {max_tokens}")
        target = torch.device(device) if device is not None else module_device(model)
        self._model = model.to(target)
        self._tokenizer = tokenizer
        self._device = target
        self._max_tokens = int(max_tokens)
        self._identity = identity
        self._template = template
        self._known_tokens = known_tokens
        self._prefix = self._num_words(template.split("{}")[0])
        self._extra = self._prefix + self._num_words(template.split("{}")[1])
        self._dim: int | None = None
        self._cost: dict[str, int] = {}

    @classmethod
    def from_config(
        cls,
        config: ConfigLike,
        checkpoint: str | os.PathLike | None = None,
        *,
        seed: int | None = None,
        device: str | torch.device | None = None,
        max_tokens: int = 256,
        template: str = "{}",
    ) -> OpenCLIPTokenEncoder:
        """Encoder over an open_clip model built from an architecture config (``model_cfg``
        dict or json, e.g. the OV-Shapes teacher's ``teacher.json``) and optional weights."""
        cfg = load_clip_config(config)
        model = create_clip_from_config(cfg, checkpoint, seed=seed)
        identity = None
        if checkpoint is not None:
            cfg_hash = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
            identity = f"open_clip-tokens:{cfg_hash}:file:{file_identity(checkpoint)}"
        return cls(
            model,
            create_clip_tokenizer(cfg),
            device=device if device is not None else default_device(),
            max_tokens=max_tokens,
            identity=identity,
            template=template,
        )

    @property
    def module(self) -> nn.Module:
        return self._model

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def known_tokens(self) -> KnownTokens | None:
        """The token ids of a pruned token table (None: a full model)."""
        return self._known_tokens

    def _check_phrases(self, phrases: list[str]) -> None:
        """Refuse phrases whose templated text needs a token the pruned table lacks."""
        if self._known_tokens is not None:
            texts = [self._template.format(p) for p in phrases]
            self._known_tokens.check(self._tokenizer, texts, phrases)

    @property
    def context_length(self) -> int:
        return int(self._tokenizer(["x"]).shape[1])

    @property
    def dim(self) -> int:
        if self._dim is None:
            # only the width is read: no known-token check (a pruned table may lack "x")
            self._dim = int(self._run(self._encode_sentences, ["x"], False).features.shape[1])
        return self._dim

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = (
                f"open_clip-tokens:sha256:{state_dict_digest(self._model)}"
                f"|tokenizer:{type(self._tokenizer).__name__}:{self.context_length}"
            )
        return f"{self._identity}|max_tokens={self._max_tokens}|template={self._template}"

    def _num_words(self, text: str) -> int:
        """Tokens of ``text`` between the start and end tokens."""
        if not text.strip():
            return 0
        encode = getattr(self._tokenizer, "encode", None)
        if encode is not None:
            return len(encode(text))
        return int(self._tokenizer([text])[0].argmax()) - 1

    def phrase_cost(self, phrase: str) -> int:
        cost = self._cost.get(phrase)
        if cost is None:
            words = self._num_words(phrase)
            limit = self.context_length - 2 - self._extra
            if words > limit:
                raise PromptTooLongError(
                    f"phrase {phrase!r} has {words} tokens; the CLIP text tower takes at most "
                    f"{limit} per phrase (context length {limit + 2}); shorten it"
                )
            cost = self._cost[phrase] = words + 1  # its words and its end token
        return cost

    @property
    def has_sentence_tokens(self) -> bool:
        return True

    def _phrase_states(self, phrases: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, context, D) projected token states of the templated phrases, each its own
        sequence, and the position of each one's EOT token (N,)."""
        tokens = self._tokenizer([self._template.format(p) for p in phrases]).to(self._device)
        return self._states(tokens), tokens.argmax(dim=-1)  # EOT: the largest token id

    def _encode_sentences(self, phrases: list[str], check: bool = True) -> TokenizedPrompt:
        if check:
            self._check_phrases(phrases)
        states, eot = self._phrase_states(phrases)
        features = states[torch.arange(len(phrases), device=states.device), eot]
        mask = torch.ones(len(phrases), dtype=torch.bool)
        spans = tuple((i, i + 1) for i in range(len(phrases)))
        return TokenizedPrompt(tuple(phrases), ". ".join(phrases) + ".", features, mask, spans)

    def _states(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, context, D) projected token states of a tokenized batch."""
        captured: list[torch.Tensor] = []
        handle = _find(self._model, "ln_final").register_forward_hook(
            lambda module, args, output: captured.append(output)
        )
        try:
            self._model.encode_text(tokens)
        finally:
            handle.remove()
        states = captured[-1]
        if states.shape[0] != tokens.shape[0]:  # a sequence-first transformer
            states = states.transpose(0, 1)
        proj = _find(self._model, "text_projection")
        if isinstance(proj, nn.Module):
            states = proj(states)
        elif proj is not None:
            states = states @ proj
        return states

    def caption_offsets(self, caption: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The caption's BPE token ids (no start / end tokens) and each one's characters.

        Raises:
            InputError: a tokenizer other than open_clip's standard BPE one, or a caption whose
                cleaned text does not line up with its characters.
        """
        pat = getattr(self._tokenizer, "pat", None)
        encode = getattr(self._tokenizer, "encode", None)
        if pat is None or encode is None:
            raise InputError(
                f"OpenCLIPTokenEncoder: captions need open_clip's standard BPE tokenizer "
                f"(character offsets), not {type(self._tokenizer).__name__}"
            )
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        lowered = caption.lower()
        source = lowered if len(lowered) == len(caption) else caption
        for match in pat.finditer(source):
            pieces = encode(match.group())
            ids += pieces
            offsets += [(match.start(), match.end())] * len(pieces)
        if ids != list(encode(caption)):
            raise InputError(
                f"OpenCLIPTokenEncoder: cannot map the characters of caption {caption[:60]!r} "
                "to tokens (the tokenizer's text cleaning changes it); normalise its text"
            )
        return ids, offsets

    def _encode_caption(self, caption: str, char_spans: list) -> TokenizedPrompt:
        if self._known_tokens is not None:
            self._known_tokens.check(self._tokenizer, [caption])
        ids, offsets = self.caption_offsets(caption)
        context = self.context_length
        ids, offsets = ids[: context - 2], offsets[: context - 2]
        words = len(ids)
        if words + 1 > self._max_tokens:
            ids, offsets = ids[: self._max_tokens - 1], offsets[: self._max_tokens - 1]
            words = len(ids)
        spans = char_spans_to_token_spans([*offsets, (0, 0)], char_spans)
        sot, eot = self._tokenizer.sot_token_id, self._tokenizer.eot_token_id
        tokens = torch.zeros(1, context, dtype=torch.long)
        tokens[0, : words + 2] = torch.tensor([sot, *ids, eot])
        states = self._states(tokens.to(self._device))[0]
        features = states[1 : words + 2]  # the words and the EOT
        mask = torch.ones(features.shape[0], dtype=torch.bool)
        phrases = tuple(
            " ".join(caption[s:e] for s, e in ([p] if len(p) == 2 and isinstance(p[0], int) else p))
            for p in char_spans
        )
        return TokenizedPrompt(phrases, caption, features, mask, tuple(spans))

    def _encode_phrases(self, phrases: list[str]) -> TokenizedPrompt:
        for phrase in phrases:
            self.phrase_cost(phrase)  # refuses a phrase the tower would truncate
        self._check_phrases(phrases)
        states, eot = self._phrase_states(phrases)
        rows, spans, start = [], [], 0
        for i, phrase in enumerate(phrases):
            first = 1 + self._prefix  # after the start token and the template's leading words
            words = self.phrase_cost(phrase) - 1
            rows += [states[i, first : first + words], states[i, int(eot[i]) : int(eot[i]) + 1]]
            spans.append((start, start + words + 1))  # the phrase's words and the EOT
            start += words + 1
        features = torch.cat(rows)
        mask = torch.ones(features.shape[0], dtype=torch.bool)
        return TokenizedPrompt(
            tuple(phrases), ". ".join(phrases) + ".", features, mask, tuple(spans)
        )
