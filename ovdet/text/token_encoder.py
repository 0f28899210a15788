"""Token text encoders: per-token features of a prompt and the token spans of its phrases.

A :class:`TokenEncoder` is what a grounding detector (region-word alignment, GLIP-style fusion;
``ovdet.methods.grounding``) reads text with. Unlike a :class:`~ovdet.text.TextEncoder`, which
pools a string into one vector, it returns every token's feature, which tokens are real (not
padding) and, for each phrase of the prompt, the range of tokens it occupies -- the positive
map of a box labelled with that phrase is built from these ranges.

Prompts are built from phrases (``"red circle. blue square."``) so that each phrase's character
span is exact; free captions with ``tokens_positive`` character spans (the MDETR / GLIP
"modulated" format) go through :meth:`TokenEncoder.encode_caption`, which maps characters to
tokens with the tokenizer's offsets (:func:`char_spans_to_token_spans`).

An encoder may also give *sentence tokens* (:meth:`TokenEncoder.encode_sentences`): one token
per phrase, the phrase's sentence embedding from its own sequence (a CLIP tower's end-of-text
state), for a detector that reads each class from a single token ("eot" readout).

Like a ``TextEncoder``, a token encoder wraps a network without being an ``nn.Module``: the
detector neither trains it nor stores it in its checkpoints (a frozen text encoder; see
docs/methods.md#grounding-r-cnn for why), so encoded prompts can be cached per vocabulary.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ovdet.utils.errors import InputError

__all__ = [
    "PROMPT_SEPARATOR",
    "PromptTooLongError",
    "TokenEncoder",
    "TokenizedPrompt",
    "build_prompt",
    "char_spans_to_token_spans",
    "check_phrases",
]

PROMPT_SEPARATOR = ". "


class PromptTooLongError(InputError):
    """A prompt (or a single phrase) needs more tokens than the text encoder takes."""


@dataclass(frozen=True)
class TokenizedPrompt:
    """One encoded prompt.

    Attributes:
        phrases: the P phrases (class names or caption phrases), in prompt order.
        text: the prompt string (phrases joined by ``". "``, or a caption).
        features: (L, D) float32 token features (rows past the real tokens are padding).
        mask: (L,) bool, True for real tokens.
        spans: P ``(start, end)`` token ranges, ``end`` exclusive: the tokens of each phrase.
    """

    phrases: tuple[str, ...]
    text: str
    features: torch.Tensor
    mask: torch.Tensor
    spans: tuple[tuple[int, int], ...]

    @property
    def num_tokens(self) -> int:
        """L, the padded length."""
        return int(self.features.shape[0])

    def to(self, device: torch.device | str) -> TokenizedPrompt:
        return TokenizedPrompt(
            self.phrases,
            self.text,
            self.features.to(device),
            self.mask.to(device),
            self.spans,
        )


def check_phrases(phrases: Sequence[str], where: str) -> list[str]:
    """A non-empty list of non-empty strings (an error names the first bad entry)."""
    if isinstance(phrases, str):
        raise TypeError(f"{where}: expected a list of phrases, got the string {phrases!r}")
    phrases = list(phrases)
    if not phrases:
        raise InputError(f"{where}: no phrases; pass at least one class name or phrase")
    for i, phrase in enumerate(phrases):
        if not isinstance(phrase, str) or not phrase.strip():
            raise InputError(
                f"{where}: phrase at index {i} is {phrase!r}; phrases must be non-empty strings"
            )
    return phrases


def build_prompt(
    phrases: Sequence[str], separator: str = PROMPT_SEPARATOR
) -> tuple[str, list[tuple[int, int]]]:
    """Join phrases into one prompt, GLIP's ``"person. bicycle. car."``.

    Returns:
        the prompt text and the ``(start, end)`` character span of every phrase in it.
    """
    phrases = check_phrases(phrases, "build_prompt")
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, phrase in enumerate(phrases):
        if i:
            parts.append(separator)
            pos += len(separator)
        spans.append((pos, pos + len(phrase)))
        parts.append(phrase)
        pos += len(phrase)
    return "".join(parts) + separator.strip(), spans


def char_spans_to_token_spans(
    offsets: Sequence[tuple[int, int]],
    char_spans: Sequence[Sequence[tuple[int, int]] | tuple[int, int]],
) -> list[tuple[int, int]]:
    """Map character spans to token ranges with a tokenizer's offsets.

    A token belongs to a span when their character ranges overlap (a word split into several
    word pieces gives all of them). Special tokens have empty offsets ``(0, 0)`` and never
    belong to a span.

    Args:
        offsets: per token, its ``(start, end)`` characters in the text (a fast tokenizer's
            ``offset_mapping``).
        char_spans: per phrase, one ``(start, end)`` span or a list of them (MDETR's
            ``tokens_positive``: a phrase may be split, e.g. ``[[0, 3], [10, 15]]``); the
            token range covers all of them.

    Returns:
        per phrase, the ``(first, last + 1)`` token range.

    Raises:
        PromptTooLongError: a span has no token (it lies past a truncated end).
        InputError: an empty or reversed span.
    """
    out: list[tuple[int, int]] = []
    for i, spans in enumerate(char_spans):
        pieces = [spans] if _is_pair(spans) else list(spans)
        if not pieces:
            raise InputError(f"phrase {i}: no character span")
        hits: list[int] = []
        for start, end in pieces:
            if not 0 <= start < end:
                raise InputError(
                    f"phrase {i}: character span ({start}, {end}) is empty or reversed"
                )
            hits += [t for t, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
        if not hits:
            raise PromptTooLongError(
                f"phrase {i} (characters {pieces}) has no token: the text was truncated before "
                "it; use a shorter caption or fewer phrases"
            )
        out.append((min(hits), max(hits) + 1))
    return out


def _is_pair(value) -> bool:
    return len(value) == 2 and all(isinstance(v, int) for v in value)


class TokenEncoder(abc.ABC):
    """Encodes a prompt into per-token features, a real-token mask and phrase token spans.

    Subclasses provide :attr:`module`, :attr:`device`, :attr:`dim`, :attr:`identity`,
    :attr:`max_tokens`, :meth:`phrase_cost`, :meth:`_encode_phrases` and, when they can map
    characters to tokens, :meth:`_encode_caption`.
    """

    @property
    @abc.abstractmethod
    def module(self) -> nn.Module:
        """The wrapped network (kept in eval mode while encoding)."""

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Device the network runs on."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Token feature dimension D."""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Stable string naming the weights and tokenizer (part of cache keys)."""

    @property
    @abc.abstractmethod
    def max_tokens(self) -> int:
        """The most tokens one prompt may hold (special tokens included)."""

    @property
    def prompt_overhead(self) -> int:
        """Tokens a prompt costs besides its phrases (e.g. BERT's [CLS] and [SEP])."""
        return 0

    @abc.abstractmethod
    def phrase_cost(self, phrase: str) -> int:
        """Tokens ``phrase`` adds to a prompt (its separator included)."""

    @abc.abstractmethod
    def _encode_phrases(self, phrases: list[str]) -> TokenizedPrompt:
        """Encode a prompt made of ``phrases`` (called under no_grad, module in eval)."""

    @property
    def has_sentence_tokens(self) -> bool:
        """Whether :meth:`encode_sentences` is available (a sentence token per phrase)."""
        return False

    def _encode_sentences(self, phrases: list[str]) -> TokenizedPrompt:
        raise InputError(
            f"{type(self).__name__} has no sentence token per phrase; the 'eot' readout needs "
            "an encoder that reads each phrase as its own sequence (OpenCLIPTokenEncoder)"
        )

    def _encode_caption(
        self, caption: str, char_spans: list
    ) -> TokenizedPrompt:  # pragma: no cover - encoders without offsets
        raise InputError(
            f"{type(self).__name__} cannot map caption characters to tokens; use an encoder "
            "with a fast tokenizer (HFTokenEncoder) for captions with character spans"
        )

    def encode_prompt(self, phrases: Sequence[str]) -> TokenizedPrompt:
        """Encode the prompt ``"phrase_0. phrase_1. ..."``.

        Raises:
            PromptTooLongError: the prompt needs more than :attr:`max_tokens` tokens (the
                message names the count; split the vocabulary with
                ``ovdet.methods.grounding.split_into_prompts``).
        """
        phrases = check_phrases(phrases, f"{type(self).__name__}.encode_prompt")
        need = self.prompt_overhead + sum(self.phrase_cost(p) for p in phrases)
        if need > self.max_tokens:
            raise PromptTooLongError(
                f"a prompt of {len(phrases)} phrases needs {need} tokens but "
                f"{type(self).__name__} takes at most {self.max_tokens}; split the vocabulary "
                "into several prompts (GroundingRCNN does this for class vocabularies)"
            )
        return self._run(self._encode_phrases, phrases)

    def encode_sentences(self, phrases: Sequence[str]) -> TokenizedPrompt:
        """Encode ``phrases`` as one token each: phrase p is read alone (as its own sequence)
        and token p is its sentence embedding (for a CLIP tower: the end-of-text state, the
        embedding CLIP aligns with images). Spans are ``(p, p + 1)``; a prompt holds at most
        :attr:`max_tokens` phrases, and a phrase the encoder would truncate is refused.

        Raises:
            InputError: the encoder has no sentence tokens (:attr:`has_sentence_tokens`).
            PromptTooLongError: more phrases than :attr:`max_tokens`, or a phrase too long.
        """
        phrases = check_phrases(phrases, f"{type(self).__name__}.encode_sentences")
        if not self.has_sentence_tokens:
            return self._encode_sentences(phrases)  # raises
        if len(phrases) > self.max_tokens:
            raise PromptTooLongError(
                f"{len(phrases)} sentence tokens but {type(self).__name__} takes at most "
                f"{self.max_tokens} per prompt; split the vocabulary into several prompts"
            )
        for phrase in phrases:
            self.phrase_cost(phrase)  # refuses a phrase the encoder would truncate
        return self._run(self._encode_sentences, phrases)

    def encode_caption(
        self, caption: str, char_spans: Sequence[Sequence[tuple[int, int]] | tuple[int, int]]
    ) -> TokenizedPrompt:
        """Encode a free caption whose phrases are given as character spans.

        Args:
            caption: the text.
            char_spans: per phrase, a ``(start, end)`` character span or a list of them (the
                ``tokens_positive`` of MDETR / GLIP grounding annotations).
        """
        if not isinstance(caption, str) or not caption.strip():
            raise InputError(f"encode_caption: caption must be a non-empty string, got {caption!r}")
        spans = list(char_spans)
        if not spans:
            raise InputError("encode_caption: no phrase spans; pass at least one")
        for i, s in enumerate(spans):
            for start, end in [s] if _is_pair(s) else s:
                if end > len(caption):
                    raise InputError(
                        f"encode_caption: span {i} ({start}, {end}) ends past the caption "
                        f"({len(caption)} characters)"
                    )
        return self._run(self._encode_caption, caption, spans)

    def _run(self, fn, *args) -> TokenizedPrompt:
        module = self.module
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = fn(*args)
        finally:
            module.train(was_training)
        return TokenizedPrompt(
            out.phrases, out.text, out.features.float().cpu(), out.mask.cpu(), out.spans
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, max_tokens={self.max_tokens})"
