"""Paint an object's appearance (colour, shading, texture) onto the pixels of its mask."""

from __future__ import annotations

import math

import numpy as np

_COLOUR_JITTER = 16  # per-channel +- jitter of an object's base colour
_SHADING = 0.12  # +- multiplicative brightness ramp across an object


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _second_colour(rgb: np.ndarray) -> np.ndarray:
    """Stripe / dot colour: a light tint of dark colours, a dark shade of light ones."""
    luminance = float(rgb @ np.array([0.299, 0.587, 0.114]))
    if luminance < 140:
        return rgb * 0.3 + 255 * 0.7
    return rgb * 0.35


def paint_object(
    image: np.ndarray,
    mask: np.ndarray,
    rgb: tuple[int, int, int],
    texture: str | None,
    rng: np.random.Generator,
) -> None:
    """Paint one object in place.

    Args:
        image: (H, W, 3) uint8 canvas, modified in place.
        mask: (H, W) bool pixels of the object (painted exactly these, nothing else).
        rgb: nominal colour; jittered slightly per object and shaded with a soft ramp.
        texture: ``None`` / "plain", "striped" (stripes at a random angle and period) or
            "dotted" (a rotated lattice of dots).
        rng: random generator (consumed deterministically).
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
    if texture == "striped":
        period = rng.uniform(5.0, 9.0)
        on = (u % period) < period / 2
        colour = np.where(on[..., None], _second_colour(base)[None, None, :], colour)
    elif texture == "dotted":
        spacing = rng.uniform(6.0, 9.0)
        du, dv = u % spacing - spacing / 2, v % spacing - spacing / 2
        on = du * du + dv * dv < (spacing * 0.27) ** 2
        colour = np.where(on[..., None], _second_colour(base)[None, None, :], colour)
    elif texture not in (None, "plain"):
        raise ValueError(f"paint_object: unknown texture {texture!r}")
    region = image[y0:y1, x0:x1]
    region[local] = np.clip(colour[local], 0, 255).astype(np.uint8)
