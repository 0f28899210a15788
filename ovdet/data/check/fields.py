"""Helpers shared by the checks: json value types (ids, numbers), short renderings of values
and entry locations for examples."""

from __future__ import annotations

import json
import math
from typing import Any


def short(value: Any, limit: int = 60) -> str:
    text = (
        json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_int_id(value: Any) -> bool:
    """A COCO id: an int, not a bool (``True == 1`` would silently alias image 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def id_problem(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, float):
        return f"the float {value!r}"
    return f"{short(value)} ({type(value).__name__})"


NUMBER_TYPES = frozenset((int, float))  # json numbers (bool is a type of its own)


def all_numbers(values: list) -> bool:
    """Every value is a json number (not a bool, not a string): fast for long lists."""
    return set(map(type, values)) <= NUMBER_TYPES


class At:
    """``annotations[i] (id=.., image_id=..)`` or ``images[i] (id=..)``, formatted only when
    an issue names it (most entries have none)."""

    __slots__ = ("kind", "i", "ident", "iid")

    def __init__(self, kind: str, i: int, ident: Any, iid: Any = None):
        self.kind, self.i, self.ident, self.iid = kind, i, ident, iid

    def __str__(self) -> str:
        if self.kind == "annotations":
            return f"annotations[{self.i}] (id={short(self.ident)}, image_id={short(self.iid)})"
        return f"{self.kind}[{self.i}] (id={short(self.ident)})"
