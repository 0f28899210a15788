"""Parameters of the OV-Shapes generator (one frozen dataclass, saved into ``split.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ovdet.data.synthetic.attributes import (
    DEFAULT_COLOURS,
    DEFAULT_SHAPES,
    TEXTURES,
    ShapeCategory,
    build_categories,
)


@dataclass(frozen=True)
class OVShapesConfig:
    """How OV-Shapes scenes are made.

    Attributes:
        image_size: ``(height, width)`` in pixels (an int means a square image).
        min_objects: fewest objects per image (fewer only if placement keeps failing).
        max_objects: most objects per image.
        colours: colour attribute values (see ``attributes.COLOURS``).
        shapes: shape attribute values (see ``attributes.SHAPES``).
        textures: add the texture attribute (plain / striped / dotted): 3x the classes.
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
        # Validates colour/shape names and the split too.
        cats = build_categories(
            self.colours,
            self.shapes,
            TEXTURES if self.textures else None,
            novel_fraction=self.novel_fraction,
            split_seed=self.split_seed,
        )
        object.__setattr__(self, "_categories", tuple(cats))

    @property
    def categories(self) -> tuple[ShapeCategory, ...]:
        """All categories in id order (ids ``1..N``), ``novel`` flags set."""
        return self._categories

    def to_dict(self) -> dict:
        """JSON-able parameters (lists instead of tuples), as stored in ``split.json``."""
        out = asdict(self)
        out.pop("_categories")
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
