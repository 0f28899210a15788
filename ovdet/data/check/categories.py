"""Checks of the ``categories`` entries: ids, names, duplicates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ovdet.data.check.fields import id_problem, is_int_id, short
from ovdet.data.check.report import Collector


def check_categories(entries: list, c: Collector) -> dict[Any, tuple[int, str]]:
    """id -> (index, name) of valid categories."""
    cats: dict[Any, tuple[int, str]] = {}
    names: dict[str, int] = {}
    for i, cat in enumerate(entries):
        if not isinstance(cat, Mapping):
            c.add(
                "category.not_object",
                "error",
                "categories entries must be json objects",
                f"categories[{i}] = {short(cat)}",
            )
            continue
        cid, name = cat.get("id"), cat.get("name")
        where = f"categories[{i}]" + (f" (id={short(cid)})" if "id" in cat else "")
        if "id" not in cat:
            c.add("category.missing_id", "error", "categories need an integer 'id'", where)
            continue
        if not is_int_id(cid):
            c.add(
                "category.id_type",
                "error",
                'category ids must be integers (write 3, not "3")',
                f"{where}: id is {id_problem(cid)}",
            )
            continue
        if not isinstance(name, str) or not name.strip():
            c.add(
                "category.name",
                "error",
                "categories need a non-empty text 'name' (the class name the vocabulary uses)",
                f"{where}: name={short(name)}",
            )
            name = str(name)
        if cid in cats:
            c.add(
                "category.duplicate_id",
                "error",
                "category ids must be unique; renumber the categories and their annotations",
                f"{where} repeats id {cid} of categories[{cats[cid][0]}]",
            )
            continue
        if name in names:
            c.add(
                "category.duplicate_name",
                "warning",
                "two categories with the same name are one class to a text classifier; "
                "rename or merge them",
                f"{where} repeats name {name!r} of categories[{names[name]}]",
            )
        else:
            names[name] = i
        cats[cid] = (i, name)
    return cats
