"""Named OV-Shapes worlds: generator presets that make independent open-vocabulary problems.

A world is a set of :class:`~ovdet.data.synthetic.config.OVShapesConfig` parameters (the
image size excepted: the caller sets it) under a name. ``ovdet data ov-shapes --world NAME``
generates one; ``ovdet bench ov-shapes --suite a,b,..`` runs the benchmark in each. The
worlds differ in what names a class, what the cue is, what is novel and what surrounds the
objects, so that a method that wins in all of them is not tuned to one:

* ``default``: today's OV-Shapes, colour x shape (6 x 6 = 36 classes, 9 novel) on
  synthetic backgrounds;
* ``textures``: texture x shape (plain / striped / dotted / checkered x 6 shapes = 24
  classes, 6 novel), every object of a random colour: colour is no cue, the texture is;
* ``palette``: other colours (cyan, pink, purple, yellow, blue: two pairs of close hues) and
  shapes (ring, heart, triangle, star, cross, square), 30 classes of which 9 novel by another
  split seed, more and smaller objects;
* ``photo``: the default classes on crops of real photographs (the COCO photos shipped in
  ``ovdet/assets/backgrounds``);
* ``hard``: textures of random colours (striped / dotted / checkered x 7 shapes = 21
  classes, 5 novel, another split seed) on photographs.

Every world keeps each attribute value in some base class (the generator's split rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ovdet.data.synthetic.config import OVShapesConfig

__all__ = ["DEFAULT_SUITE", "WORLDS", "World", "resolve_worlds"]


@dataclass(frozen=True)
class World:
    """One named generator preset.

    Attributes:
        name: key in reports and sub-folder name (``"textures"``).
        description: one line for reports and ``--help``.
        params: :class:`OVShapesConfig` keyword arguments (not ``image_size``).
    """

    name: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def config(self, image_size: int | tuple[int, int] = 256) -> OVShapesConfig:
        """The generator config of this world at ``image_size``."""
        return OVShapesConfig(image_size=image_size, **dict(self.params))


def _world(name: str, description: str, **params: Any) -> World:
    return World(name, description, MappingProxyType(params))


WORLDS: Mapping[str, World] = MappingProxyType(
    {
        w.name: w
        for w in (
            _world("default", "colour x shape, 36 classes (9 novel), synthetic backgrounds"),
            _world(
                "textures",
                "texture x shape, 24 classes (6 novel), random colours, synthetic backgrounds",
                textures=True,
                colour_mode="random",
                texture_values=("plain", "striped", "dotted", "checkered"),
            ),
            _world(
                "palette",
                "other colours and shapes, 30 classes (9 novel, split seed 3), 3-8 smaller objects",
                colours=("cyan", "pink", "purple", "yellow", "blue"),
                shapes=("ring", "heart", "triangle", "star", "cross", "square"),
                novel_fraction=0.3,
                split_seed=3,
                min_objects=3,
                max_objects=8,
                max_size=0.3,
            ),
            _world(
                "photo",
                "colour x shape, 36 classes (9 novel), crops of real photographs",
                background="photo",
            ),
            _world(
                "hard",
                "texture x shape, 21 classes (5 novel, split seed 5), random colours, photos",
                textures=True,
                colour_mode="random",
                texture_values=("striped", "dotted", "checkered"),
                shapes=("circle", "square", "triangle", "star", "hexagon", "ring", "heart"),
                split_seed=5,
                background="photo",
            ),
        )
    }
)

# The suite of ``ovdet bench ov-shapes --suite standard``.
DEFAULT_SUITE: tuple[str, ...] = ("default", "textures", "palette", "photo")


def resolve_worlds(names: Sequence[str | World]) -> list[World]:
    """Worlds by name (``"standard"``: :data:`DEFAULT_SUITE`, ``"all"``: every world) or as
    :class:`World` objects.

    Raises:
        ValueError: an unknown name (the known ones listed), a world listed twice, or none.
    """
    out: list[World] = []
    for item in names:
        if isinstance(item, World):
            out.append(item)
        elif item == "standard":
            out += [WORLDS[n] for n in DEFAULT_SUITE]
        elif item == "all":
            out += list(WORLDS.values())
        elif item in WORLDS:
            out.append(WORLDS[item])
        else:
            raise ValueError(
                f"unknown world {item!r}; known: {', '.join(WORLDS)} (or 'standard', 'all')"
            )
    seen = [w.name for w in out]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise ValueError(f"worlds listed twice: {twice}")
    if not out:
        raise ValueError("no world given")
    return out
