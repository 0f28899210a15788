"""Parameters of the OV-Shapes generator (one frozen dataclass, saved into ``split.json``)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from ovdet.data.synthetic.attributes import (
    ALL_TEXTURES,
    DEFAULT_COLOURS,
    DEFAULT_SHAPES,
    TEXTURES,
    ShapeCategory,
    build_categories,
)

COLOUR_MODES: tuple[str, ...] = ("class", "random")
BACKGROUNDS: tuple[str, ...] = ("synthetic", "photo")
# Fields added after the first OV-Shapes release, in ``split.json`` only when not at their
# default: a dataset of the first release's parameters keeps byte-identical files.
_OPTIONAL_FIELDS: tuple[str, ...] = ("colour_mode", "texture_values", "background", "photo_dir")


@dataclass(frozen=True)
class OVShapesConfig:
    """How OV-Shapes scenes are made.

    Attributes:
        image_size: ``(height, width)`` in pixels (an int means a square image).
        min_objects: fewest objects per image (fewer only if placement keeps failing).
        max_objects: most objects per image.
        colours: colour attribute values (see ``attributes.COLOURS``).
        shapes: shape attribute values (see ``attributes.SHAPES``).
        textures: add the texture attribute (``texture_values``; by default plain / striped /
            dotted: 3x the classes).
        novel_fraction: fraction of categories that are novel.
        split_seed: seed of the base/novel split; fixed by default so that every dataset
            seed shares one split (as OV-COCO does).
        min_size: smallest object diameter, as a fraction of the image's shorter side.
        max_size: largest object diameter, same unit (sizes are log-uniform in between).
        min_visible: an object is only placed if it, and every object under it, keeps at
            least this fraction of its full area visible.
        min_strokes: fewest distractor strokes (lines, polylines, arcs) on the background.
        max_strokes: most distractor strokes.
        captions_per_image: captions written per image.
        placement_tries: placement attempts per object before it is skipped.
        colour_mode: "class": colour is a class attribute, every object of a class has the
            class colour ("striped red circle"); "random": colour is no class attribute, every
            object gets a random colour (any hue) and its texture a random contrasting
            second colour, so only texture x shape name the class ("striped circle"; needs
            ``textures``, and ``colours`` left at its default since it is not used).
        texture_values: the texture values when ``textures`` is on, from
            ``attributes.ALL_TEXTURES`` (plain, striped, dotted, checkered).
        background: "synthetic" (gradients / blotches / noise) or "photo" (random crops of
            real photographs, see ``photo_dir``); distractor strokes are drawn on both.
        photo_dir: folder of the photographs of ``background="photo"``; None for the COCO
            photos shipped in ``ovdet/assets/backgrounds``.
    """

    image_size: tuple[int, int] = (256, 256)
    min_objects: int = 2
    max_objects: int = 6
    colours: tuple[str, ...] = DEFAULT_COLOURS
    shapes: tuple[str, ...] = DEFAULT_SHAPES
    textures: bool = False
    novel_fraction: float = 0.25
    split_seed: int = 0
    min_size: float = 0.1
    max_size: float = 0.35
    min_visible: float = 0.3
    min_strokes: int = 3
    max_strokes: int = 12
    captions_per_image: int = 4
    placement_tries: int = 20
    colour_mode: str = "class"
    texture_values: tuple[str, ...] = TEXTURES
    background: str = "synthetic"
    photo_dir: str | None = None
    _categories: tuple[ShapeCategory, ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        size = self.image_size
        if isinstance(size, int):
            size = (size, size)
        size = tuple(int(s) for s in size)
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "colours", tuple(self.colours))
        object.__setattr__(self, "shapes", tuple(self.shapes))
        object.__setattr__(self, "texture_values", tuple(self.texture_values))
        if isinstance(self.photo_dir, os.PathLike):
            object.__setattr__(self, "photo_dir", os.fspath(self.photo_dir))
        if len(size) != 2 or min(size) < 32:
            raise ValueError(f"OVShapesConfig.image_size must be >= 32 px per side, got {size}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(
                "OVShapesConfig: need 0 <= min_objects <= max_objects, got "
                f"min_objects={self.min_objects}, max_objects={self.max_objects}"
            )
        if not 0 < self.min_size <= self.max_size <= 1:
            raise ValueError(
                "OVShapesConfig: need 0 < min_size <= max_size <= 1 (fractions of the shorter "
                f"image side), got min_size={self.min_size}, max_size={self.max_size}"
            )
        if not 0 < self.min_visible <= 1:
            raise ValueError(
                f"OVShapesConfig.min_visible must be in (0, 1], got {self.min_visible}"
            )
        if not 0 <= self.min_strokes <= self.max_strokes:
            raise ValueError(
                "OVShapesConfig: need 0 <= min_strokes <= max_strokes, got "
                f"{self.min_strokes}, {self.max_strokes}"
            )
        if self.captions_per_image < 1 or self.placement_tries < 1:
            raise ValueError("OVShapesConfig: captions_per_image and placement_tries must be >= 1")
        self._check_options()
        # Validates colour/shape names and the split too.
        cats = build_categories(
            self.colours if self.colour_mode == "class" else None,
            self.shapes,
            self.texture_values if self.textures else None,
            novel_fraction=self.novel_fraction,
            split_seed=self.split_seed,
        )
        object.__setattr__(self, "_categories", tuple(cats))

    def _check_options(self) -> None:
        """Validate the appearance / background options (errors name the field)."""
        if self.colour_mode not in COLOUR_MODES:
            raise ValueError(
                f"OVShapesConfig.colour_mode must be one of {COLOUR_MODES}, got "
                f"{self.colour_mode!r}"
            )
        if self.colour_mode == "random":
            if not self.textures:
                raise ValueError(
                    "OVShapesConfig.colour_mode='random' needs textures=True: the classes are "
                    "texture x shape (with shapes alone no novel class can be composed)"
                )
            if self.colours != DEFAULT_COLOURS:
                raise ValueError(
                    "OVShapesConfig.colours is not used with colour_mode='random' (objects take "
                    f"any colour); leave it at its default, got {list(self.colours)}"
                )
        unknown = [t for t in self.texture_values if t not in ALL_TEXTURES]
        if (
            unknown
            or not self.texture_values
            or len(set(self.texture_values)) != len(self.texture_values)
        ):
            raise ValueError(
                f"OVShapesConfig.texture_values: need distinct values from {list(ALL_TEXTURES)}, "
                f"got {list(self.texture_values)}"
            )
        if not self.textures and self.texture_values != TEXTURES:
            raise ValueError(
                "OVShapesConfig.texture_values is only used with textures=True; set textures "
                "or leave texture_values at its default"
            )
        if self.background not in BACKGROUNDS:
            raise ValueError(
                f"OVShapesConfig.background must be one of {BACKGROUNDS}, got {self.background!r}"
            )
        if self.photo_dir is not None and self.background != "photo":
            raise ValueError(
                "OVShapesConfig.photo_dir is only used with background='photo', got "
                f"background={self.background!r}"
            )

    @property
    def categories(self) -> tuple[ShapeCategory, ...]:
        """All categories in id order (ids ``1..N``), ``novel`` flags set."""
        return self._categories

    def to_dict(self) -> dict:
        """JSON-able parameters (lists instead of tuples), as stored in ``split.json``.

        The options added after the first release (colour_mode, texture_values, background,
        photo_dir) are left out when at their default (:meth:`from_dict` restores them).
        """
        out = asdict(self)
        out.pop("_categories")
        defaults = type(self).__dataclass_fields__
        for name in _OPTIONAL_FIELDS:
            if out[name] == defaults[name].default:
                out.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, params: dict) -> OVShapesConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error naming them)."""
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"OVShapesConfig: unknown parameters {unknown}; known: {sorted(known)}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
