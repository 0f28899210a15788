"""Text towers with a pruned token table: which token ids they have embedding rows for.

A model bundle (``ovdet.model_zoo.bundle``) ships its CLIP teacher's text tower with only the
token-embedding rows of the tokens in the teacher's training texts; the other rows load as
zeros. A text that needs one of them would be encoded from zero vectors -- a wrong embedding
and no error. An encoder given :class:`KnownTokens` (``known_tokens=`` of
``OpenCLIPTextEncoder`` and ``OpenCLIPTokenEncoder``) refuses such texts with
:class:`UnknownTokensError` instead; encoders over full models have none and check nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch

from ovdet.utils.errors import InputError

__all__ = ["KnownTokens", "UnknownTokensError", "describe_missing", "missing_tokens"]

Tokenizer = Callable[[list[str]], torch.Tensor]


class UnknownTokensError(InputError):
    """Texts that need token rows a pruned text tower does not have (the message names them)."""


def missing_tokens(
    tokenizer: Tokenizer, known_ids: frozenset[int], texts: Sequence[str]
) -> list[list[str]]:
    """Per text, the tokens it needs outside ``known_ids`` (as the tokenizer spells them, e.g.
    ``'giraffe</w>'``; empty for a text that needs none).

    Texts are read as the encoder reads them: ``tokenizer(texts)``, start to end-of-text token.
    """
    if not texts:
        return []
    tokens = tokenizer(list(texts))
    ends = tokens.argmax(dim=-1)  # the end-of-text token: the largest id
    decoder = getattr(tokenizer, "decoder", {})
    return [
        [decoder.get(t, str(t)) for t in row[: end + 1] if t not in known_ids]
        for row, end in zip(tokens.tolist(), ends.tolist())
    ]


def describe_missing(names: Sequence[str], missing: Sequence[list[str]], limit: int = 5) -> str:
    """``"'giraffe': ['giraffe</w>']; ..."``: the names with missing tokens (each once, at most
    ``limit``), or ``""`` when none has any."""
    lacking: dict[str, list[str]] = {}
    for name, lost in zip(names, missing):
        if lost and name not in lacking:
            lacking[name] = lost
    shown = "; ".join(f"{name!r}: {lost}" for name, lost in list(lacking.items())[:limit])
    more = f" (and {len(lacking) - limit} more)" if len(lacking) > limit else ""
    return shown + more


@dataclass(frozen=True)
class KnownTokens:
    """The token ids a pruned text tower has embedding rows for.

    Attributes:
        ids: those ids (any iterable of ints or an int tensor; stored as a frozenset).
        source: what the tower is, for messages (e.g. ``"model bundle ov-shapes-vild-text"``).
        advice: what a user whose words are refused can do instead (ends the message).
    """

    ids: frozenset[int]
    source: str = "this text encoder"
    advice: str = ""

    def __post_init__(self) -> None:
        ids = self.ids.tolist() if isinstance(self.ids, torch.Tensor) else self.ids
        object.__setattr__(self, "ids", frozenset(int(i) for i in ids))

    def check(
        self, tokenizer: Tokenizer, texts: Sequence[str], names: Sequence[str] | None = None
    ) -> None:
        """Refuse ``texts`` when one needs a token outside :attr:`ids`.

        Args:
            tokenizer: the encoder's tokenizer.
            texts: what the encoder reads.
            names: what to call each text in the message (default the text itself), e.g. the
                class name a templated prompt was made from.

        Raises:
            UnknownTokensError: naming the offending names and their missing tokens.
        """
        missing = missing_tokens(tokenizer, self.ids, texts)
        if any(missing):
            shown = describe_missing(list(texts if names is None else names), missing)
            advice = f"; {self.advice}" if self.advice else ""
            raise UnknownTokensError(
                f"{self.source} cannot encode {shown}: its text tower has no embedding for "
                f"these tokens (they would read as zeros and give wrong scores){advice}"
            )
