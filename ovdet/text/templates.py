"""Prompt templates that turn a class name into sentences for a text encoder.

A template is a format string with exactly one ``"{}"``, filled with the class name (or a
synonym). Averaging the normalised embeddings of many templates (a prompt ensemble) gives
more robust class embeddings than a single prompt (docs/methods.md#clip-basics).
"""

from __future__ import annotations

from collections.abc import Sequence

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
}

TEMPLATE_SET_NAMES: tuple[str, ...] = tuple(_TEMPLATE_SETS)


def get_templates(name: str) -> list[str]:
    """The template set ``name``: ``"single"``, ``"photo"`` or ``"ensemble"`` (24 templates).

    Returns:
        A new list of format strings, each with one ``"{}"``.
    """
    if name not in _TEMPLATE_SETS:
        raise ValueError(f"unknown template set {name!r}; choose one of {list(TEMPLATE_SET_NAMES)}")
    return list(_TEMPLATE_SETS[name])


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
    """``template`` with its ``"{}"`` replaced by ``name`` (braces in ``name`` are kept)."""
    return template.replace("{}", name)
