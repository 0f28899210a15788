"""Cluttered OV-Shapes backgrounds: muted gradients / blotches, pixel noise, distractor strokes.

Backgrounds are kept desaturated and mid-bright so that every palette colour stays visible,
while the strokes (thin lines, polylines, arcs in arbitrary colours, palette-like ones
included) are clutter a detector must learn not to fire on.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "blotchy", "noisy")


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(70, 190)
    return np.clip(grey + rng.uniform(-28, 28, 3), 0, 255).astype(np.float32)


def _upsample(small: np.ndarray, h: int, w: int) -> np.ndarray:
    img = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))
    return np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Linear two-colour ramp in a random direction (drawn small, upsampled: cheap)."""
    a, b = _muted_colour(rng), _muted_colour(rng)
    phi = rng.uniform(0, 2 * math.pi)
    grid = np.linspace(0.0, 1.0, 8, dtype=np.float32)
    t = grid[None, :] * math.cos(phi) + grid[:, None] * math.sin(phi)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return _upsample(a + (b - a) * t[..., None], h, w)


def _blotchy(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour blotches: a small grid of muted colours, upsampled bicubically."""
    grid = int(rng.integers(3, 8))
    small = np.stack([_muted_colour(rng) for _ in range(grid * grid)]).reshape(grid, grid, 3)
    return _upsample(small, h, w)


def _strokes(rng: np.random.Generator, canvas: Image.Image, count: int, h: int, w: int) -> None:
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        width = int(rng.integers(1, 4))
        kind = int(rng.integers(0, 3))
        if kind == 0:  # straight line
            pts = rng.uniform(0, 1, (2, 2)) * (w, h)
            draw.line([tuple(p) for p in pts.tolist()], fill=colour, width=width)
        elif kind == 1:  # polyline scribble
            n = int(rng.integers(3, 6))
            start = rng.uniform(0, 1, 2) * (w, h)
            steps = rng.normal(0, 0.12, (n - 1, 2)) * (w, h)
            pts = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
            draw.line([tuple(p) for p in pts.tolist()], fill=colour, width=width)
        else:  # arc of an ellipse
            cx, cy = rng.uniform(0, 1, 2) * (w, h)
            rx, ry = rng.uniform(0.05, 0.3, 2) * (w, h)
            start = float(rng.uniform(0, 360))
            end = start + float(rng.uniform(40, 200))
            draw.arc([cx - rx, cy - ry, cx + rx, cy + ry], start, end, fill=colour, width=width)


def render_background(
    rng: np.random.Generator,
    image_size: tuple[int, int],
    min_strokes: int = 3,
    max_strokes: int = 12,
) -> tuple[np.ndarray, str, int]:
    """Render one background.

    Args:
        rng: random generator (consumed deterministically).
        image_size: ``(height, width)``.
        min_strokes: fewest distractor strokes.
        max_strokes: most distractor strokes.

    Returns:
        ``(image, kind, num_strokes)``: image (H, W, 3) uint8; kind, one of
        :data:`BACKGROUND_KINDS` ("noisy" = strong pixel noise over a gradient or blotches);
        the number of strokes drawn.
    """
    h, w = image_size
    kind = BACKGROUND_KINDS[int(rng.integers(0, len(BACKGROUND_KINDS)))]
    base = kind if kind != "noisy" else ("gradient", "blotchy")[int(rng.integers(0, 2))]
    smooth = _gradient(rng, h, w) if base == "gradient" else _blotchy(rng, h, w)
    # Uniform integer noise (cheaper than Gaussian): grey-level grain plus weaker colour grain.
    amp = int(rng.integers(24, 45) if kind == "noisy" else rng.integers(3, 12))
    noise = rng.integers(-amp, amp + 1, (h, w, 1), dtype=np.int16)
    camp = amp // 3
    noise = noise + rng.integers(-camp, camp + 1, (h, w, 3), dtype=np.int16)
    image = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    canvas = Image.fromarray(image)
    count = int(rng.integers(min_strokes, max_strokes + 1))
    _strokes(rng, canvas, count, h, w)
    return np.array(canvas), kind, count
