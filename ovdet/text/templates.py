"""Prompt templates that turn a class name into sentences for a text encoder.

A template is a format string with exactly one ``"{}"``, filled with the class name (or a
synonym), and optionally ``"{article}"``, filled with "an" or "a" (ViLD's templates). Averaging
the normalised embeddings of many templates (a prompt ensemble) gives more robust class
embeddings than a single prompt (docs/methods.md#clip-basics).

Named sets (:func:`get_templates`):

- ``"single"``: "a {}." (ovdet's default); ``"photo"``: "a photo of a {}.";
- ``"ensemble"``: ovdet's 24 templates written for detection photos;
- ``"vild"``: ViLD's 63-template ensemble, kept as data in
  ``ovdet/assets/prompts/vild_templates.json`` (from the official ViLD demo, tensorflow/tpu,
  Apache-2.0), with "This is " prepended to the templates that start with "a" or "the", as the
  demo does;
- ``"rkd"``: "a photo of a {}" (no full stop): RKD's classifier files
  ``datasets/zeroshot_weights/*_clip_a+photo+cname.npy`` (hanoonaR/object-centric-ovd), written by
  ``tools/dump_clip_features.py --prompt photo`` as ``'a photo of a {}'.format(name)``;
- ``"detic"``: "a {}" (no full stop): Detic's ``*_clip_a+cname.npy`` files
  (``--prompt a``: ``'a ' + name``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

# Written for ovdet: everyday detection photos vary in framing, size, light and clutter,
# so the ensemble describes those conditions rather than artistic renditions.
_ENSEMBLE: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a picture of a {}.",
    "an image containing a {}.",
    "there is a {} in this photo.",
    "a close-up photo of a {}.",
    "a cropped photo of a {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
    "a {} seen from far away.",
    "a partially visible {}.",
    "a {} in a cluttered scene.",
    "a blurry photo of a {}.",
    "a low resolution photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a snapshot showing a {}.",
    "an indoor photo of a {}.",
    "an outdoor photo of a {}.",
    "a street scene with a {}.",
    "an everyday photo with a {} in it.",
    "a {} next to other objects.",
    "a good photo of a {}.",
    "a photo of a {} in its usual surroundings.",
)

_TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "single": ("a {}.",),
    "photo": ("a photo of a {}.",),
    "ensemble": _ENSEMBLE,
    "rkd": ("a photo of a {}",),
    "detic": ("a {}",),
}
# template sets kept as data files under ovdet/assets/prompts/
_DATA_SETS: dict[str, str] = {"vild": "vild_templates.json"}
_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "prompts"

TEMPLATE_SET_NAMES: tuple[str, ...] = (*_TEMPLATE_SETS, *_DATA_SETS)

ARTICLE = "{article}"


@cache
def _data_set(file_name: str) -> tuple[str, ...]:
    """Templates of a data file, with its "This is " prefix applied as its source does."""
    path = _PROMPTS_DIR / file_name
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    prefix = data.get("this_is_prefix", "")
    starts = tuple(data.get("this_is_applies_to", ()))
    templates = [prefix + t if prefix and t.startswith(starts) else t for t in data["templates"]]
    return tuple(validate_templates(templates))


def get_templates(name: str) -> list[str]:
    """The template set ``name`` (see the module docstring).

    Args:
        name: ``"single"``, ``"photo"``, ``"ensemble"`` (24 templates), ``"vild"`` (63),
            ``"rkd"`` or ``"detic"``.

    Returns:
        A new list of format strings, each with one ``"{}"`` (and maybe ``"{article}"``).
    """
    if name in _DATA_SETS:
        return list(_data_set(_DATA_SETS[name]))
    if name not in _TEMPLATE_SETS:
        raise ValueError(f"unknown template set {name!r}; choose one of {list(TEMPLATE_SET_NAMES)}")
    return list(_TEMPLATE_SETS[name])


def article(name: str) -> str:
    """ViLD's article for ``name``: "an" when it starts with a, e, i, o or u, else "a"."""
    return "an" if name[:1] in ("a", "e", "i", "o", "u") else "a"


def validate_templates(templates: Sequence[str]) -> list[str]:
    """Checks that ``templates`` is a non-empty list of strings with exactly one ``"{}"`` each.

    Returns:
        The templates as a list.
    """
    if isinstance(templates, str):
        raise TypeError(f"templates must be a list of strings, not the string {templates!r}")
    templates = list(templates)
    if not templates:
        raise ValueError(
            "templates is empty: give at least one template such as 'a photo of a {}.'"
        )
    for i, template in enumerate(templates):
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(
                f"templates[{i}] = {template!r} must be a string with exactly one '{{}}' "
                "where the class name goes"
            )
    return templates


def fill_template(template: str, name: str) -> str:
    """``template`` with its ``"{}"`` replaced by ``name`` and ``"{article}"`` by
    :func:`article` of ``name`` (braces in ``name`` are kept)."""
    if ARTICLE in template:
        template = template.replace(ARTICLE, article(name))
    return template.replace("{}", name)
