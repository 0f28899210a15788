"""Resolving a vocabulary spec (built-in name, names file, comma list) to class names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

from ovdet.data.builtin_meta import (
    COCO_CLASS_NAMES,
    OV_COCO_BASE_NAMES,
    OV_COCO_NAMES,
    OV_COCO_NOVEL_NAMES,
    lvis_categories,
    lvis_class_names,
    lvis_rare_names,
    lvis_synonyms,
    readable_name,
)

VocabularySpec = Union[str, os.PathLike, Sequence[str]]

BUILTIN_VOCABULARIES: tuple[str, ...] = (
    "coco",
    "lvis",
    "lvis-base",
    "lvis-rare",
    "ov-coco",
    "ov-coco-base",
    "ov-coco-novel",
)


def _builtin(name: str) -> list[str]:
    if name == "coco":
        return list(COCO_CLASS_NAMES)
    if name == "lvis":
        return lvis_class_names(readable=True)
    if name == "lvis-rare":
        return lvis_rare_names(readable=True)
    if name == "lvis-base":
        return [readable_name(c["name"]) for c in lvis_categories() if c["frequency"] != "r"]
    if name == "ov-coco":
        return list(OV_COCO_NAMES)
    if name == "ov-coco-base":
        return list(OV_COCO_BASE_NAMES)
    return list(OV_COCO_NOVEL_NAMES)  # "ov-coco-novel"


def resolve_vocabulary(spec: VocabularySpec) -> list[str]:
    """Class names of a vocabulary spec, validated.

    Args:
        spec: one of

            * a built-in name: ``"coco"`` (80, id order), ``"lvis"`` (1203, id order, readable
              names such as ``"aerosol can"``), ``"lvis-base"`` (866 non-rare),
              ``"lvis-rare"`` (337), ``"ov-coco"`` (65, id order), ``"ov-coco-base"`` (48),
              ``"ov-coco-novel"`` (17);
            * a path to a names file: one name per line, blank lines and lines starting
              with ``"#"`` ignored;
            * a comma-separated list ``"cat,dog"``, or a single name ``"cat"``;
            * a list of names.

    Returns:
        The names, whitespace-stripped, in order.

    Raises:
        ValueError: the vocabulary is empty, or a name is empty or duplicated (the message
            names the entry and where it is).
        FileNotFoundError: ``spec`` looks like a file path (``.txt`` suffix or a path
            separator) but there is no such file.
    """
    if isinstance(spec, os.PathLike):
        return _read_names_file(Path(spec))
    if isinstance(spec, str):
        key = spec.strip()
        if key.lower() in BUILTIN_VOCABULARIES:
            return _builtin(key.lower())
        path = Path(key).expanduser()
        if key and path.is_file():
            return _read_names_file(path)
        if "," in key:
            entries = [(f"position {i} of {spec!r}", name) for i, name in enumerate(key.split(","))]
            return _validate(entries, source=f"vocabulary {spec!r}")
        if path.suffix.lower() == ".txt" or os.sep in key or "/" in key:
            raise FileNotFoundError(
                f"vocabulary names file {path} not found (a vocabulary is one of "
                f"{list(BUILTIN_VOCABULARIES)}, a names file, or a comma list 'cat,dog')"
            )
        if not key:
            raise ValueError(
                "empty vocabulary spec: give a built-in name "
                f"{list(BUILTIN_VOCABULARIES)}, a names file or a comma list 'cat,dog'"
            )
        return [key]
    names = list(spec)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"vocabulary entry {i} is {type(name).__name__}, expected str")
    return _validate([(f"index {i}", name) for i, name in enumerate(names)], source="vocabulary")


def _read_names_file(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary names file {path} not found")
    entries = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            name = line.strip()
            if name and not name.startswith("#"):
                entries.append((f"line {line_no} of {path}", name))
    return _validate(entries, source=f"names file {path}")


def _validate(entries: list[tuple[str, str]], *, source: str) -> list[str]:
    """``entries`` = (where, name) pairs; strips names, rejects empty/duplicate ones."""
    if not entries:
        raise ValueError(f"{source} contains no class names")
    names: list[str] = []
    first_seen: dict[str, str] = {}
    duplicates: list[str] = []
    for where, raw in entries:
        name = raw.strip()
        if not name:
            raise ValueError(f"empty class name at {where}")
        if name in first_seen:
            duplicates.append(f"{name!r} ({first_seen[name]} and {where})")
        else:
            first_seen[name] = where
        names.append(name)
    if duplicates:
        raise ValueError(f"duplicate class names in {source}: {', '.join(duplicates)}")
    return names


def lvis_synonym_lists(names: Sequence[str]) -> list[list[str]]:
    """Per name, the LVIS synonyms of that category (readable, the name itself first).

    Args:
        names: LVIS category names, readable (``"aerosol can"``) or raw (``"aerosol_can"``).

    Returns:
        One list of synonyms per name, without duplicates, for synonym-averaged embeddings.

    Raises:
        ValueError: naming the names that are not LVIS v1 categories.
    """
    by_name = dict(zip(lvis_class_names(readable=True), lvis_synonyms(readable=True)))
    unknown = [name for name in names if readable_name(name) not in by_name]
    if unknown:
        raise ValueError(
            f"{len(unknown)} names are not LVIS v1 categories, so they have no LVIS synonyms: "
            f"{unknown[:20]}{' ...' if len(unknown) > 20 else ''}"
        )
    out = []
    for name in names:
        readable = readable_name(name)
        ordered = dict.fromkeys([readable, *by_name[readable]])
        out.append(list(ordered))
    return out
