"""Positive maps and vocabulary chunking of the grounding detector.

A *positive map* says which tokens a box's phrase occupies: row p of a (P, L) matrix is 1 on
the tokens of phrase p (from the token spans of an encoded prompt) and 0 elsewhere. Boxes are
trained towards the row of their phrase (sigmoid focal loss on the region-word scores); at
inference a class's score is the mean (or max) of its tokens' probabilities, read through the
same rows.

The ``"eot"`` readout reads each phrase from ONE token: its end-of-text (sentence) token. The
detector then encodes every class name as its own sequence and keeps only that token
(:meth:`~ovdet.text.TokenEncoder.encode_sentences`; for a CLIP tower the EOT state, i.e. the
sentence embedding ViLD-text's classifier uses), so a prompt of P names has P tokens, the
positive map is the identity and a class's score is its token's probability. On a prompt of
word tokens, ``"eot"`` reads the last token of each phrase's span (a CLIP phrase's EOT).

A vocabulary larger than one prompt is split into *chunks*, each a prompt that fits the
encoder's token budget (:func:`split_into_prompts`); the detector runs fusion and heads once
per chunk on the same backbone features and merges the detections.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ovdet.text.token_encoder import PromptTooLongError, TokenEncoder, check_phrases

__all__ = [
    "AGGREGATIONS",
    "aggregate_phrase_scores",
    "last_tokens",
    "positive_map",
    "split_into_prompts",
]

AGGREGATIONS = ("mean", "max", "eot")


def positive_map(
    spans: Sequence[tuple[int, int]], num_tokens: int, *, normalize: bool = False
) -> torch.Tensor:
    """(P, L) map of phrases to tokens.

    Args:
        spans: per phrase, its ``(start, end)`` token range (``end`` exclusive).
        num_tokens: L.
        normalize: divide each row by its number of tokens (so ``probs @ map.T`` is the mean
            over the phrase's tokens).

    Returns:
        float32 (P, L), binary (or row-normalised) on the tokens of each phrase.
    """
    out = torch.zeros(len(spans), num_tokens)
    for i, (start, end) in enumerate(spans):
        if not 0 <= start < end <= num_tokens:
            raise ValueError(
                f"positive_map: span {i} ({start}, {end}) is empty or outside the {num_tokens} "
                "tokens"
            )
        out[i, start:end] = 1.0 / (end - start) if normalize else 1.0
    return out


def last_tokens(phrase_map: torch.Tensor) -> torch.Tensor:
    """(P,) long: the last token of each phrase of a (P, L) positive map (its end-of-text
    token for an ``OpenCLIPTokenEncoder`` prompt, its only one for sentence tokens)."""
    hit = phrase_map > 0
    if hit.shape[0] and not bool(hit.any(dim=1).all()):
        raise ValueError("a phrase of the positive map has no token")
    columns = torch.arange(phrase_map.shape[1], device=phrase_map.device)
    return (hit * (columns + 1)).argmax(dim=1)


def aggregate_phrase_scores(
    token_probs: torch.Tensor, phrase_map: torch.Tensor, how: str = "mean"
) -> torch.Tensor:
    """Per-phrase scores from per-token probabilities.

    Args:
        token_probs: (R, L) token probabilities of R regions.
        phrase_map: (P, L) binary positive map.
        how: ``"mean"`` (GLIP's default) or ``"max"`` over each phrase's tokens, or
            ``"eot"``: the probability of each phrase's last token (its end-of-text token).

    Returns:
        (R, P) scores.
    """
    if how == "mean":
        weights = phrase_map / phrase_map.sum(dim=1, keepdim=True).clamp(min=1)
        return token_probs @ weights.T
    if how == "max":
        masked = token_probs[:, None, :] * phrase_map[None]  # probabilities are >= 0
        return masked.amax(dim=-1)
    if how == "eot":
        return token_probs[:, last_tokens(phrase_map)]
    raise ValueError(f"phrase aggregation must be one of {AGGREGATIONS}, got {how!r}")


def split_into_prompts(
    names: Sequence[str],
    encoder: TokenEncoder,
    *,
    max_phrases: int | None = None,
    sentences: bool = False,
) -> list[list[str]]:
    """Split a vocabulary into consecutive prompts that fit ``encoder.max_tokens``.

    Greedy in vocabulary order: a prompt takes names while their tokens (and the prompt's
    special tokens) fit, and at most ``max_phrases`` names (GLIP evaluates LVIS in chunks of
    40). Every name lands in exactly one prompt, in order. With ``sentences`` (prompts for
    :meth:`~ovdet.text.TokenEncoder.encode_sentences`, the ``"eot"`` readout) every name
    costs one token and a prompt has no special tokens.

    Raises:
        PromptTooLongError: one name alone does not fit a prompt (the message names it).
    """
    names = check_phrases(names, "split_into_prompts")
    if max_phrases is not None and max_phrases < 1:
        raise ValueError(f"split_into_prompts: max_phrases must be >= 1, got {max_phrases}")
    budget = encoder.max_tokens - (0 if sentences else encoder.prompt_overhead)
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for i, name in enumerate(names):
        try:
            cost = encoder.phrase_cost(name)
        except PromptTooLongError as e:
            raise PromptTooLongError(f"class name at index {i}: {e}") from None
        if sentences:
            cost = 1  # one sentence token per name (phrase_cost refused a name too long)
        if cost > budget:
            raise PromptTooLongError(
                f"class name at index {i} ({name!r}) needs {cost} tokens, more than a whole "
                f"prompt holds ({budget} besides the special tokens); shorten the name"
            )
        full = max_phrases is not None and len(current) >= max_phrases
        if current and (used + cost > budget or full):
            chunks.append(current)
            current, used = [], 0
        current.append(name)
        used += cost
    chunks.append(current)
    return chunks
