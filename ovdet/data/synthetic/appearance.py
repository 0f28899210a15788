"""Paint an object's appearance (colour, shading, texture) onto the pixels of its mask.

An object's colour is its class colour, or (``OVShapesConfig.colour_mode="random"``) a random
one: :func:`random_colour` for the body and :func:`contrasting_colour` for the texture's
stripes, dots or checks, so that only the texture and the shape name the class.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

_COLOUR_JITTER = 16  # per-channel +- jitter of an object's base colour
_SHADING = 0.12  # +- multiplicative brightness ramp across an object
_LUMA = np.array([0.299, 0.587, 0.114])
# random body colours: any hue, saturated and bright enough to stand out from the muted
# synthetic backgrounds
_SATURATION = (0.5, 1.0)
_VALUE = (0.55, 1.0)
# a texture's second colour differs from the body by at least this luminance (0-255): the
# pattern stays visible whatever the two hues
_MIN_CONTRAST = 70.0
_CONTRAST_TRIES = 10


def random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random object colour: uniform hue, saturation and value in bright ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*_SATURATION), rng.uniform(*_VALUE)
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))


def contrasting_colour(rng: np.random.Generator, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """A random colour (any hue, saturation, value) whose luminance differs from ``rgb``'s by
    at least ``_MIN_CONTRAST``; after ``_CONTRAST_TRIES`` misses, the fixed tint / shade rule
    of class-coloured textures."""
    luminance = float(np.asarray(rgb, np.float64) @ _LUMA)
    for _ in range(_CONTRAST_TRIES):
        h, s, v = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 1)
        cand = tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))
        if abs(float(np.asarray(cand, np.float64) @ _LUMA) - luminance) >= _MIN_CONTRAST:
            return cand
    return tuple(int(c) for c in _second_colour(np.asarray(rgb, np.float32)))


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _second_colour(rgb: np.ndarray) -> np.ndarray:
    """Stripe / dot colour: a light tint of dark colours, a dark shade of light ones."""
    luminance = float(rgb @ _LUMA)
    if luminance < 140:
        return rgb * 0.3 + 255 * 0.7
    return rgb * 0.35


def paint_object(
    image: np.ndarray,
    mask: np.ndarray,
    rgb: tuple[int, int, int],
    texture: str | None,
    rng: np.random.Generator,
    second: tuple[int, int, int] | None = None,
) -> None:
    """Paint one object in place.

    Args:
        image: (H, W, 3) uint8 canvas, modified in place.
        mask: (H, W) bool pixels of the object (painted exactly these, nothing else).
        rgb: nominal colour; jittered slightly per object and shaded with a soft ramp.
        texture: ``None`` / "plain", "striped" (stripes at a random angle and period),
            "dotted" (a rotated lattice of dots) or "checkered" (a rotated checkerboard).
        rng: random generator (consumed deterministically).
        second: colour of the stripes / dots / checks; None: a light tint of dark colours,
            a dark shade of light ones (computed from the jittered ``rgb``).
    """
    box = _bbox(mask)
    if box is None:
        return
    y0, y1, x0, x1 = box
    local = mask[y0:y1, x0:x1]
    base = np.clip(
        np.asarray(rgb, np.float32) + rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, 3), 0, 255
    )
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    phi = rng.uniform(0, 2 * math.pi)
    u = xs * math.cos(phi) + ys * math.sin(phi)
    v = -xs * math.sin(phi) + ys * math.cos(phi)
    extent = max(y1 - y0, x1 - x0, 1)
    ramp = 1.0 + rng.uniform(-_SHADING, _SHADING) * (u - u.mean()) / extent * 2
    colour = base[None, None, :] * ramp[..., None]
    pattern = _second_colour(base) if second is None else np.asarray(second, np.float32)
    if texture == "striped":
        period = rng.uniform(5.0, 9.0)
        on = (u % period) < period / 2
        colour = np.where(on[..., None], pattern[None, None, :], colour)
    elif texture == "dotted":
        spacing = rng.uniform(6.0, 9.0)
        du, dv = u % spacing - spacing / 2, v % spacing - spacing / 2
        on = du * du + dv * dv < (spacing * 0.27) ** 2
        colour = np.where(on[..., None], pattern[None, None, :], colour)
    elif texture == "checkered":
        cell = rng.uniform(3.5, 5.5)
        on = (np.floor(u / cell) + np.floor(v / cell)) % 2 == 0
        colour = np.where(on[..., None], pattern[None, None, :], colour)
    elif texture not in (None, "plain"):
        raise ValueError(f"paint_object: unknown texture {texture!r}")
    region = image[y0:y1, x0:x1]
    region[local] = np.clip(colour[local], 0, 255).astype(np.uint8)
