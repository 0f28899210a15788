"""Captions of OV-Shapes scenes: every object's class named, with counts, in varied phrasing.

Each caption names every category of its image, in singular ("a red circle", "an orange
star") or plural ("two red circles") form -- the plural always contains the singular class
name, so ``name in caption.lower()`` holds for every category present. Group order is
shuffled per caption; templates differ between the captions of one image; spatial relations
("to the left of", "above", ...) are only used for two single objects and are computed from
their visible boxes, so they are true.

:func:`make_grounded_captions` returns the same captions with, per object, the character span
of its class name as written ("red circle" in "a red circle", "red circles" in "two red
circles"), recorded while the caption is composed (not searched for afterwards, so a name
that occurs twice, or inside another name, still gets its own span). Objects of one class are
named by one phrase and share its span.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ovdet.data.synthetic.attributes import ShapeCategory

_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

_BACKGROUND_WORDS = {
    "gradient": ("a gradient background", "a shaded background", "a smoothly shaded background"),
    "blotchy": ("a blotchy background", "a mottled background", "a patchy background"),
    "noisy": ("a noisy background", "a grainy background", "a speckled background"),
    "photo": ("a photo", "a photograph", "a real-world photo"),
}

# {objs}: the object list, {bg}: background phrase, {be}: "is" / "are" agreeing with the list.
_TEMPLATES = (
    "{objs} on {bg}",
    "there {be} {objs} on {bg}",
    "an image of {objs}",
    "a picture showing {objs} against {bg}",
    "{objs}",
    "a synthetic scene with {objs}",
    "{bg} with {objs}",
    "you can see {objs} here",
)
_CLUTTER_TEMPLATES = (
    "{objs} among a few thin lines on {bg}",
    "{objs} drawn over some scribbles on {bg}",
)
_PAIR_TEMPLATES = (
    "{a} {rel} {b}",
    "{a} {rel} {b} on {bg}",
    "there is {a} {rel} {b}",
)
_EMPTY_TEMPLATES = (
    "an empty scene on {bg}",
    "{bg} with no shapes on it",
    "nothing but {bg}",
)


@dataclass(frozen=True)
class CaptionObject:
    """What a caption needs to know about one object.

    Attributes:
        category: the object's category.
        box: visible-mask box ``(x, y, w, h)`` (XYWH, pixels).
    """

    category: ShapeCategory
    box: tuple[float, float, float, float]


def count_phrase(category: ShapeCategory, count: int, rng: np.random.Generator) -> str:
    """ "a red circle", "an orange star", "one red circle", "three red circles"."""
    return _count_phrase(category, count, rng)[0]


def _count_phrase(category: ShapeCategory, count: int, rng: np.random.Generator) -> tuple[str, int]:
    """:func:`count_phrase` and where the class name (as written) starts in it."""
    if count == 1:
        if rng.random() < 0.15:
            phrase = f"one {category.name}"
        else:
            article = "an" if category.name[0] in "aeiou" else "a"
            phrase = f"{article} {category.name}"
        return phrase, len(phrase) - len(category.name)
    number = _NUMBERS[count] if count < len(_NUMBERS) else str(count)
    phrase = f"{number} {category.plural_name}"
    return phrase, len(phrase) - len(category.plural_name)


def _join(items: list[str], rng: np.random.Generator) -> tuple[str, list[int]]:
    """ "a, b and c" (an Oxford comma at random with 3+ items) and where each item starts."""
    if len(items) <= 1:
        return "".join(items), [0] * len(items)
    comma = "," if len(items) > 2 and rng.random() < 0.5 else ""
    starts, pos = [], 0
    for item in items[:-1]:
        starts.append(pos)
        pos += len(item) + 2  # ", "
    starts.append(pos - 2 + len(comma) + len(" and "))
    return ", ".join(items[:-1]) + f"{comma} and {items[-1]}", starts


def _format(template: str, **values: str) -> tuple[str, dict[str, int]]:
    """``template.format(**values)`` and where each field's value starts in the result."""
    parts: list[str] = []
    starts: dict[str, int] = {}
    pos = 0
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        pos += len(literal)
        if field is not None:
            starts[field] = pos
            parts.append(values[field])
            pos += len(values[field])
    return "".join(parts), starts


def _relation(a: CaptionObject, b: CaptionObject) -> str:
    ax, ay = a.box[0] + a.box[2] / 2, a.box[1] + a.box[3] / 2
    bx, by = b.box[0] + b.box[2] / 2, b.box[1] + b.box[3] / 2
    if abs(ax - bx) >= abs(ay - by):
        return "to the left of" if ax < bx else "to the right of"
    return "above" if ay < by else "below"


def _finish(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _name(spans: list, objects: Sequence[CaptionObject], members: list[int], start: int) -> None:
    """Record that the objects ``members`` (one class) are named from character ``start``."""
    category = objects[members[0]].category
    written = category.name if len(members) == 1 else category.plural_name
    for m in members:
        spans[m] = (start, start + len(written))


@dataclass(frozen=True)
class GroundedCaption:
    """A caption and where it names each object.

    Attributes:
        text: the caption.
        spans: per object (in the order given to :func:`make_grounded_captions`), the
            ``(start, end)`` characters of its class name as written, ``text[start:end]``
            being e.g. ``"red circle"`` or ``"red circles"``; ``()`` for an empty scene.
    """

    text: str
    spans: tuple[tuple[int, int], ...]


def make_captions(
    objects: Sequence[CaptionObject],
    background: str,
    num_strokes: int,
    rng: np.random.Generator,
    num_captions: int = 4,
) -> list[str]:
    """Captions for one scene.

    Args:
        objects: the scene's (annotated) objects.
        background: background kind (``background.BACKGROUND_KINDS``).
        num_strokes: distractor strokes drawn (clutter is mentioned only if > 0).
        rng: random generator (consumed deterministically).
        num_captions: captions to return.

    Returns:
        ``num_captions`` strings, each naming every category of ``objects`` with its count.
    """
    return [
        c.text for c in make_grounded_captions(objects, background, num_strokes, rng, num_captions)
    ]


def make_grounded_captions(
    objects: Sequence[CaptionObject],
    background: str,
    num_strokes: int,
    rng: np.random.Generator,
    num_captions: int = 4,
) -> list[GroundedCaption]:
    """:func:`make_captions` (same texts, same use of ``rng``) with each object's name span."""
    groups: dict[int, list[int]] = {}
    for index, obj in enumerate(objects):
        groups.setdefault(obj.category.id, []).append(index)
    if not groups:
        templates = list(_EMPTY_TEMPLATES)
    else:
        templates = list(_TEMPLATES) + (list(_CLUTTER_TEMPLATES) if num_strokes > 0 else [])
        if len(objects) == 2 and len(groups) == 2:
            templates += list(_PAIR_TEMPLATES)
    order = rng.permutation(len(templates))
    captions = []
    for i in range(num_captions):
        template = templates[int(order[i % len(order)])]
        bg = _BACKGROUND_WORDS[background][int(rng.integers(0, 3))]
        keys = [list(groups)[j] for j in rng.permutation(len(groups))]
        spans: list[tuple[int, int] | None] = [None] * len(objects)
        if "{rel}" in template:
            a, b = groups[keys[0]][0], groups[keys[1]][0]
            phrase_a, off_a = _count_phrase(objects[a].category, 1, rng)
            phrase_b, off_b = _count_phrase(objects[b].category, 1, rng)
            text, at = _format(
                template, a=phrase_a, b=phrase_b, rel=_relation(objects[a], objects[b]), bg=bg
            )
            _name(spans, objects, [a], at["a"] + off_a)
            _name(spans, objects, [b], at["b"] + off_b)
        else:
            phrases = [
                _count_phrase(objects[groups[k][0]].category, len(groups[k]), rng) for k in keys
            ]
            be = "is" if phrases and len(groups[keys[0]]) == 1 else "are"
            objs, item_starts = _join([p for p, _ in phrases], rng)
            text, at = _format(template, objs=objs, bg=bg, be=be)
            for k, (_, offset), item_start in zip(keys, phrases, item_starts):
                _name(spans, objects, groups[k], at["objs"] + item_start + offset)
        if any(s is None for s in spans):  # every template names every object
            raise RuntimeError(f"OV-Shapes: caption {text!r} does not name every object")
        captions.append(GroundedCaption(_finish(text), tuple(spans)))
    return captions
