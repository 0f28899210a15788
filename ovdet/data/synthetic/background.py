"""Cluttered OV-Shapes backgrounds: muted gradients / blotches, pixel noise, distractor strokes;
or crops of real photographs.

Synthetic backgrounds are kept desaturated and mid-bright so that every palette colour stays
visible, while the strokes (thin lines, polylines, arcs in arbitrary colours, palette-like ones
included) are clutter a detector must learn not to fire on. Photo backgrounds
(:class:`PhotoBackgrounds`, ``OVShapesConfig.background="photo"``) are random crops of the
images of a folder (by default the COCO photos shipped in ``ovdet/assets/backgrounds``), at a
random scale, flipped or not, with the same strokes on top.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "blotchy", "noisy")
PHOTO_KIND = "photo"
PHOTO_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
# a crop's side, as a fraction of the largest crop of the image's aspect ratio that fits the
# photo (uniform): from a close-up texture of the photo to the whole scene
PHOTO_SCALE: tuple[float, float] = (0.3, 1.0)
_PHOTO_CACHE = 32  # folders of at most this many photos are decoded once per generator


def default_photo_dir() -> Path:
    """The photos shipped with ovdet (``ovdet/assets/backgrounds``; licences in its NOTICE.md)."""
    return Path(__file__).resolve().parents[2] / "assets" / "backgrounds"


class PhotoBackgrounds:
    """Random crops of the photographs in a folder, as OV-Shapes backgrounds.

    Args:
        folder: a folder of ``.jpg`` / ``.jpeg`` / ``.png`` images (not searched recursively);
            None for :func:`default_photo_dir`. Images are used in file-name order, so the
            backgrounds are a function of the rng and the folder's content.

    Raises:
        FileNotFoundError: the folder does not exist or has no image (the message names
            ``OVShapesConfig.photo_dir``).
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_photo_dir()
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"OVShapesConfig.photo_dir: {self.folder} is not a folder; give a folder of "
                f".jpg / .png photographs (or leave it unset for the shipped ones)"
            )
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(
                f"OVShapesConfig.photo_dir: no {'/'.join(PHOTO_SUFFIXES)} image in {self.folder}"
            )
        self._cache: dict[int, Image.Image] = {}

    def listing(self) -> list[list[str]]:
        """``[[file name, sha256], ...]`` of the photos (recorded in ``split.json``)."""
        return [[p.name, hashlib.sha256(p.read_bytes()).hexdigest()] for p in self.files]

    def _photo(self, index: int) -> Image.Image:
        if index in self._cache:
            return self._cache[index]
        with Image.open(self.files[index]) as img:
            photo = img.convert("RGB")
        if len(self.files) <= _PHOTO_CACHE:
            self._cache[index] = photo
        return photo

    def crop(self, rng: np.random.Generator, image_size: tuple[int, int]) -> np.ndarray:
        """A random crop of a random photo, resized to ``image_size`` (``(height, width)``).

        The crop has the aspect ratio of ``image_size``; its side is a uniform fraction in
        :data:`PHOTO_SCALE` of the largest such crop in the photo, its position uniform, and
        it is flipped left-right with probability 1/2.

        Returns:
            (H, W, 3) uint8 image.
        """
        h, w = image_size
        photo = self._photo(int(rng.integers(0, len(self.files))))
        pw, ph = photo.size
        full_h = min(float(ph), pw * h / w)
        scale = rng.uniform(*PHOTO_SCALE)
        ch, cw = full_h * scale, full_h * scale * w / h
        y0, x0 = rng.uniform(0, ph - ch), rng.uniform(0, pw - cw)
        crop = photo.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        image = np.asarray(crop, dtype=np.uint8)
        if rng.random() < 0.5:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)


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
    photos: PhotoBackgrounds | None = None,
) -> tuple[np.ndarray, str, int]:
    """Render one background.

    Args:
        rng: random generator (consumed deterministically).
        image_size: ``(height, width)``.
        min_strokes: fewest distractor strokes.
        max_strokes: most distractor strokes.
        photos: draw a crop of these photos instead of a synthetic background.

    Returns:
        ``(image, kind, num_strokes)``: image (H, W, 3) uint8; kind, one of
        :data:`BACKGROUND_KINDS` ("noisy" = strong pixel noise over a gradient or blotches)
        or :data:`PHOTO_KIND`; the number of strokes drawn.
    """
    h, w = image_size
    if photos is not None:
        canvas = Image.fromarray(photos.crop(rng, image_size))
        count = int(rng.integers(min_strokes, max_strokes + 1))
        _strokes(rng, canvas, count, h, w)
        return np.array(canvas), PHOTO_KIND, count
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
