"""OV-Shapes vocabulary: attribute values, categories (attribute compositions), base/novel split.

A category is a composition of attribute values, e.g. colour "red" x shape "circle" ->
"red circle"; with textures enabled, texture x colour x shape -> "striped red circle" (plain
ones are named "plain red circle" so that no class name is a word-subset of another). Without
the colour attribute (objects of random colours), texture x shape -> "striped circle".

Category ids are ``1..N`` in texture-major, then colour, then shape order (the order of the
attribute lists given), identical in every file of a generated dataset.

The novel categories form a Latin-square-like set: no two novel categories share an
attribute value until every value has one (then two, ...), and every attribute value keeps at
least one base category. So every colour and every shape is seen with boxes in training, but
some of their *combinations* are not -- a detector must compose them from language.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

# name -> RGB, in preference order: the first ``n`` are used when ``n`` colours are asked for.
COLOURS: MappingProxyType[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (214, 39, 40),
        "green": (44, 160, 64),
        "blue": (38, 86, 214),
        "yellow": (240, 208, 36),
        "purple": (136, 58, 184),
        "orange": (245, 130, 24),
        "cyan": (30, 198, 208),
        "pink": (240, 112, 180),
    }
)

# Shapes that stay distinguishable under any rotation (no "diamond": a rotated square).
SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "cross",
    "ring",
    "heart",
)

# The textures of ``textures=True`` (the default texture set; a change here changes datasets).
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")
# Every texture the painter knows (``OVShapesConfig.texture_values`` picks among them).
ALL_TEXTURES: tuple[str, ...] = (*TEXTURES, "checkered")

DEFAULT_COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
DEFAULT_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")


def plural(shape: str) -> str:
    """Plural of a shape noun ("cross" -> "crosses", "star" -> "stars")."""
    return shape + "es" if shape.endswith(("s", "x", "ch", "sh")) else shape + "s"


@dataclass(frozen=True)
class ShapeCategory:
    """One OV-Shapes category.

    Attributes:
        id: COCO category id (1-based, same in every file).
        colour: colour name (a key of :data:`COLOURS`), or ``None`` when colour is not a class
            attribute (objects of random colours).
        shape: shape name (one of :data:`SHAPES`).
        texture: texture name, or ``None`` when textures are disabled.
        novel: whether the category is novel (never box-annotated in ``train_base``).
    """

    id: int
    colour: str | None
    shape: str
    texture: str | None
    novel: bool = False

    @property
    def name(self) -> str:
        """Class name in plain words: "red circle", "striped red circle" or "striped circle"."""
        words = [w for w in (self.texture, self.colour) if w is not None]
        return " ".join([*words, self.shape])

    @property
    def plural_name(self) -> str:
        """Plural class name: "red circles" (contains :attr:`name`: plurals only add a suffix)."""
        return self.name[: -len(self.shape)] + plural(self.shape)

    @property
    def rgb(self) -> tuple[int, int, int] | None:
        """The class colour (None when colour is not a class attribute)."""
        return None if self.colour is None else COLOURS[self.colour]

    def attributes(self) -> dict[str, str]:
        """Attribute name -> value, e.g. ``{"colour": "red", "shape": "circle"}``."""
        out = {} if self.colour is None else {"colour": self.colour}
        out["shape"] = self.shape
        if self.texture is not None:
            out["texture"] = self.texture
        return out

    def to_coco(self) -> dict:
        """COCO ``categories`` entry (extra keys: [colour], shape, [texture], split)."""
        return {
            "id": self.id,
            "name": self.name,
            "supercategory": self.shape,
            **self.attributes(),
            "split": "novel" if self.novel else "base",
        }


def _check_values(kind: str, values: tuple[str, ...], allowed) -> None:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"OV-Shapes: unknown {kind} {unknown}; choose from {list(allowed)}")
    if len(set(values)) != len(values):
        raise ValueError(f"OV-Shapes: duplicate {kind} in {list(values)}")
    if not values:
        raise ValueError(f"OV-Shapes: at least one {kind} is needed")


def build_categories(
    colours: tuple[str, ...] | None = DEFAULT_COLOURS,
    shapes: tuple[str, ...] = DEFAULT_SHAPES,
    textures: tuple[str, ...] | None = None,
    *,
    novel_fraction: float = 0.25,
    split_seed: int = 0,
) -> list[ShapeCategory]:
    """All categories (texture-major, colour, shape order; ids ``1..N``) with the novel split.

    Args:
        colours: colour names (keys of :data:`COLOURS`), or ``None`` for no colour attribute
            (then ``textures`` are needed: shapes alone leave nothing to compose).
        shapes: shape names (from :data:`SHAPES`).
        textures: texture names (from :data:`ALL_TEXTURES`), or ``None`` for no texture
            attribute.
        novel_fraction: fraction of categories made novel, rounded to the nearest count.
        split_seed: seed of the tie-breaking among equally balanced novel choices.

    Returns:
        The categories, ``novel`` set by :func:`choose_novel`.
    """
    colour_values: tuple[str | None, ...] = (None,)
    if colours is not None:
        _check_values("colours", tuple(colours), COLOURS)
        colour_values = tuple(colours)
    _check_values("shapes", tuple(shapes), SHAPES)
    texture_values: tuple[str | None, ...] = (None,)
    if textures is not None:
        _check_values("textures", tuple(textures), ALL_TEXTURES)
        texture_values = tuple(textures)
    if colours is None and textures is None:
        raise ValueError(
            "OV-Shapes: without the colour attribute the texture attribute is needed (shapes "
            "alone are one attribute: no novel class could be composed from base ones)"
        )
    cats = []
    for texture in texture_values:
        for colour in colour_values:
            for shape in shapes:
                cats.append(ShapeCategory(len(cats) + 1, colour, shape, texture))
    novel = choose_novel(cats, novel_fraction=novel_fraction, split_seed=split_seed)
    return [ShapeCategory(c.id, c.colour, c.shape, c.texture, novel=c.id in novel) for c in cats]


def choose_novel(
    categories: list[ShapeCategory], *, novel_fraction: float, split_seed: int
) -> set[int]:
    """Pick novel category ids, balanced over attribute values (Latin-square-like).

    Greedy: repeatedly take the category whose attribute values are used least by the novel
    categories chosen so far (minimising the max, then the sum, of those counts), among those
    whose every attribute value keeps at least one base category; ties are broken by a
    permutation seeded with ``split_seed``. For a 6 x 6 colour x shape grid and 9 novel
    classes the first 6 form a permutation (a transversal) and every colour and every shape is
    novel in exactly one or two categories.

    Raises:
        ValueError: if ``novel_fraction`` is outside ``[0, 1)`` or so high that some
            attribute value would have no base category.
    """
    if not 0.0 <= novel_fraction < 1.0:
        raise ValueError(f"OV-Shapes: novel_fraction must be in [0, 1), got {novel_fraction}")
    num_novel = int(round(novel_fraction * len(categories)))
    order = np.random.default_rng(split_seed).permutation(len(categories))
    keys = [tuple(c.attributes().items()) for c in categories]
    base_count: dict[tuple[str, str], int] = {}
    for k in keys:
        for kv in k:
            base_count[kv] = base_count.get(kv, 0) + 1
    novel_count = dict.fromkeys(base_count, 0)
    novel: set[int] = set()
    for _ in range(num_novel):
        best, best_score = None, None
        for i in order:
            cat = categories[i]
            if cat.id in novel or any(base_count[kv] <= 1 for kv in keys[i]):
                continue
            counts = [novel_count[kv] for kv in keys[i]]
            score = (max(counts), sum(counts))
            if best_score is None or score < best_score:
                best, best_score = i, score
        if best is None:
            raise ValueError(
                f"OV-Shapes: novel_fraction={novel_fraction} makes {num_novel} of "
                f"{len(categories)} categories novel, but then some attribute value would "
                "have no base category; lower novel_fraction"
            )
        novel.add(categories[best].id)
        for kv in keys[best]:
            base_count[kv] -= 1
            novel_count[kv] += 1
    return novel
