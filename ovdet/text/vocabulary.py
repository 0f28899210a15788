"""Resolving a vocabulary spec (built-in name, names file, comma list) to class names."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
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


_FILE_SUFFIX = re.compile(r"^\S+\.[A-Za-z0-9]{1,5}$")  # "classes.txt", "v.names", "cats.json"
_KINDS = ("auto", "names", "file")


def looks_like_path(spec: str) -> bool:
    """True when a string is meant as a file: it has a path separator, ends with a file
    suffix (``.txt``, ``.json``, ...; no spaces), or names an existing file."""
    key = spec.strip()
    if not key:
        return False
    if "/" in key or os.sep in key or (os.altsep and os.altsep in key):
        return True
    return bool(_FILE_SUFFIX.match(key)) or Path(key).expanduser().is_file()


def resolve_vocabulary(
    spec: VocabularySpec, *, kind: str = "auto", option: str | None = None
) -> list[str]:
    """Class names of a vocabulary spec, validated.

    Args:
        spec: one of

            * a built-in name: ``"coco"`` (80, id order), ``"lvis"`` (1203, id order, readable
              names such as ``"aerosol can"``), ``"lvis-base"`` (866 non-rare),
              ``"lvis-rare"`` (337), ``"ov-coco"`` (65, id order), ``"ov-coco-base"`` (48),
              ``"ov-coco-novel"`` (17);
            * a names file: one name per line (UTF-8), blank lines and lines starting with
              ``"#"`` ignored; or a ``.json`` file holding a list of names or a COCO dataset
              (its ``categories``' names in id order);
            * a comma-separated list ``"cat,dog"``, or a single name ``"cat"``;
            * a list (or tuple) of names.
        kind: how a string is read:

            * ``"auto"`` (default): a spec that looks like a path (an ``os.PathLike``, a path
              separator, a file suffix such as ``.txt``, or the name of an existing file) is
              a names file, which must exist; otherwise a built-in name, comma list or
              single name;
            * ``"names"`` (``--vocab``): a built-in name, comma list or single name; a single
              entry that looks like a path is refused (pass files as ``kind="file"``), so a
              file name never becomes a one-class vocabulary;
            * ``"file"`` (``--vocab-file``, ``--names-file``): a names file, which must exist.
        option: the command-line option the spec came from, named in errors.

    Returns:
        The names, whitespace-stripped, in order.

    Raises:
        ValueError: the vocabulary is empty, a name is empty or duplicated, a names file is
            not UTF-8 text or has a comma in a line, or (``kind="names"``) the spec is a file
            name (the message names the entry and where it is).
        FileNotFoundError: a names file that does not exist (named).
        IsADirectoryError: a names file that is a folder.
        TypeError: a list entry that is not a string, or a spec of another type.
    """
    if kind not in _KINDS:
        raise ValueError(f"resolve_vocabulary: kind must be one of {_KINDS}, got {kind!r}")
    label = f"{option} " if option else ""
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and kind == "file"):
        return _read_names_file(Path(spec).expanduser(), option=option)
    if isinstance(spec, str):
        key = spec.strip()
        if not key:
            raise ValueError(
                f"{label}empty vocabulary spec: give a built-in name "
                f"{list(BUILTIN_VOCABULARIES)}, a names file or a comma list 'cat,dog'"
            )
        if key.lower() in BUILTIN_VOCABULARIES:
            return _builtin(key.lower())
        if "," in key:
            entries = [(f"position {i} of {spec!r}", name) for i, name in enumerate(key.split(","))]
            return _validate(entries, source=f"vocabulary {spec!r}")
        if looks_like_path(key):
            if kind == "names":
                exists = Path(key).expanduser().is_file()
                use = (
                    f"--vocab-file {key}" if option else f"resolve_vocabulary({key!r}, kind='file')"
                )
                raise ValueError(
                    f"{label or 'vocabulary '}{key!r} "
                    f"{'names an existing file' if exists else 'looks like a file path'}, not "
                    f"class names: for a names file pass {use}; class names go as 'cat,dog' "
                    "(a class named like a file needs a names file)"
                )
            return _read_names_file(Path(key).expanduser(), option=option)
        return [key]
    if isinstance(spec, (set, frozenset, dict)) or not isinstance(spec, Sequence):
        kind_name = type(spec).__name__
        raise TypeError(
            f"{label}vocabulary must be a list of class names (or a spec string), got "
            f"{kind_name}" + ("; a set has no order: pass a list" if "set" in kind_name else "")
        )
    names = list(spec)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(
                f"{label}vocabulary entry {i} is {name!r} ({type(name).__name__}); class names "
                "must be strings"
            )
    return _validate([(f"index {i}", name) for i, name in enumerate(names)], source="vocabulary")


def _read_names_file(path: Path, *, option: str | None = None) -> list[str]:
    where = f"{option} {path}" if option else f"vocabulary names file {path}"
    if not path.exists():
        hint = ""
        if path.name.lower() in BUILTIN_VOCABULARIES and len(path.parts) == 1:
            hint = f"; for the built-in vocabulary pass the name instead (--vocab {path.name})"
        raise FileNotFoundError(
            f"{where} not found (a names file has one class name per line){hint}"
        )
    if path.is_dir():
        raise IsADirectoryError(f"{where} is a folder; give the names file itself")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}); a names file has "
            "one class name per line"
        ) from exc
    if path.suffix.lower() == ".json":
        return _read_names_json(path, text)
    entries = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if name and not name.startswith("#"):
            if "," in name:
                raise ValueError(
                    f"line {line_no} of names file {path} has a comma ({name!r}); a names file "
                    "has one class name per line: put each name on its own line"
                )
            entries.append((f"line {line_no} of {path}", name))
    return _validate(entries, source=f"names file {path}")


def _read_names_json(path: Path, text: str) -> list[str]:
    """A json list of names, or a COCO dataset's categories in id order."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"vocabulary file {path} is not valid json: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("categories"), list):
        cats = data["categories"]
        for i, cat in enumerate(cats):
            if not isinstance(cat, dict) or "name" not in cat or "id" not in cat:
                raise ValueError(
                    f"vocabulary file {path}: categories[{i}] needs 'id' and 'name', got {cat!r}"
                )
        cats = sorted(cats, key=lambda c: c["id"])
        entries = [(f"category id {c['id']} of {path}", c["name"]) for c in cats]
    elif isinstance(data, list):
        entries = [(f"index {i} of {path}", name) for i, name in enumerate(data)]
    else:
        raise ValueError(
            f"vocabulary file {path} holds a json {type(data).__name__}; expected a list of "
            "class names or a COCO dataset with 'categories'"
        )
    for where, name in entries:
        if not isinstance(name, str):
            raise ValueError(f"class name at {where} is {name!r}; class names must be strings")
    return _validate(entries, source=f"vocabulary file {path}")


def validate_names(names: Sequence[str], where: str = "vocabulary") -> list[str]:
    """Check a list of class names as given (not stripped) and return it as a list.

    Raises:
        TypeError: ``names`` is a string (``"star"`` would become 4 classes) or not an ordered
            sequence, or an entry is not a string.
        ValueError: the list is empty, or a name is empty/blank or duplicated (named).
    """
    if isinstance(names, (str, bytes)):
        raise TypeError(
            f"{where} must be a list of class names, got the string {names!r}; pass "
            f"[{names!r}] for one class, or resolve_vocabulary({names!r}) for a spec such as "
            "'cat,dog' or 'coco'"
        )
    if isinstance(names, (set, frozenset, dict)) or not isinstance(names, (Sequence, Iterable)):
        raise TypeError(
            f"{where} must be a list of class names, got {type(names).__name__}"
            + ("; a set has no order: pass a list" if isinstance(names, (set, frozenset)) else "")
        )
    names = list(names)
    if not names:
        raise ValueError(f"{where} is empty; pass at least one class name")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(
                f"{where}: entry {i} is {name!r} ({type(name).__name__}); class names must be "
                "strings"
            )
        if not name.strip():
            raise ValueError(f"{where}: empty class name at index {i}")
        if name in seen:
            raise ValueError(
                f"{where}: duplicate class name {name!r} at indices {seen[name]} and {i}; "
                "class names must be unique"
            )
        seen[name] = i
    return [str(n) for n in names]


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
