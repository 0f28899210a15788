"""Captions of OV-Shapes scenes: every object's class named, with counts, in varied phrasing.

Each caption names every category of its image, in singular ("a red circle", "an orange
star") or plural ("two red circles") form -- the plural always contains the singular class
name, so ``name in caption.lower()`` holds for every category present. Group order is
shuffled per caption; templates differ between the captions of one image; spatial relations
("to the left of", "above", ...) are only used for two single objects and are computed from
their visible boxes, so they are true.
"""

from __future__ import annotations

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
    if count == 1:
        if rng.random() < 0.15:
            return f"one {category.name}"
        article = "an" if category.name[0] in "aeiou" else "a"
        return f"{article} {category.name}"
    number = _NUMBERS[count] if count < len(_NUMBERS) else str(count)
    return f"{number} {category.plural_name}"


def _join(items: list[str], rng: np.random.Generator) -> str:
    if len(items) <= 1:
        return "".join(items)
    comma = "," if len(items) > 2 and rng.random() < 0.5 else ""
    return ", ".join(items[:-1]) + f"{comma} and {items[-1]}"


def _relation(a: CaptionObject, b: CaptionObject) -> str:
    ax, ay = a.box[0] + a.box[2] / 2, a.box[1] + a.box[3] / 2
    bx, by = b.box[0] + b.box[2] / 2, b.box[1] + b.box[3] / 2
    if abs(ax - bx) >= abs(ay - by):
        return "to the left of" if ax < bx else "to the right of"
    return "above" if ay < by else "below"


def _finish(text: str) -> str:
    return text[0].upper() + text[1:] + "."


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
    groups: dict[int, list[CaptionObject]] = {}
    for obj in objects:
        groups.setdefault(obj.category.id, []).append(obj)
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
        if "{rel}" in template:
            a, b = groups[keys[0]][0], groups[keys[1]][0]
            text = template.format(
                a=count_phrase(a.category, 1, rng),
                b=count_phrase(b.category, 1, rng),
                rel=_relation(a, b),
                bg=bg,
            )
        else:
            phrases = [count_phrase(groups[k][0].category, len(groups[k]), rng) for k in keys]
            be = "is" if phrases and len(groups[keys[0]]) == 1 else "are"
            text = template.format(objs=_join(phrases, rng), bg=bg, be=be)
        captions.append(_finish(text))
    return captions
