"""Reading user images of every common kind into RGB ``uint8`` arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class ImageReadError(ValueError):
    """An image could not be read or understood; the message names it."""


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        finite = arr[np.isfinite(arr)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            arr = arr * 255.0  # floats in [0, 1]
        return np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit (and wider) images use their full range: scale 0..65535 to 0..255
        info = np.iinfo(arr.dtype)
        if info.max > 255:
            top = 65535 if arr.max() <= 65535 else arr.max()
            return (arr.astype(np.float64) * (255.0 / top)).round().astype(np.uint8)
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ImageReadError(f"{name}: unsupported pixel type {arr.dtype}")


def to_rgb_array(image: np.ndarray, name: str = "image") -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array of any common dtype -> RGB uint8.

    Grayscale is replicated to 3 channels, alpha is composited over white, 16-bit and float
    images are rescaled to 0..255.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(
            f"{name}: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, "
            f"got shape {tuple(arr.shape)}"
        )
    if arr.shape[2] == 4:
        rgb = arr[:, :, :3].astype(np.float64)
        alpha = arr[:, :, 3:].astype(np.float64)
        amax = 1.0 if np.issubdtype(arr.dtype, np.floating) else float(np.iinfo(arr.dtype).max)
        alpha = alpha / amax
        white = amax
        arr = (rgb * alpha + white * (1.0 - alpha)).astype(arr.dtype)
    arr = _to_uint8(arr, name)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return to_rgb_array(np.asarray(img).astype(np.int64).clip(0, 65535).astype(np.uint16), name)
    if img.mode == "F":
        return to_rgb_array(np.asarray(img), name)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return to_rgb_array(np.asarray(img.convert("RGBA")), name)
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def load_image(image: ImageLike) -> np.ndarray:
    """Read an image path, PIL image or numpy array as an RGB ``uint8`` array (H, W, 3).

    Raises:
        ImageReadError: the file is missing, unreadable or corrupt, or the array has an
            unsupported shape; the message names the file.
    """
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, "PIL image")
    if isinstance(image, np.ndarray):
        return to_rgb_array(image, "array")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ImageReadError(f"image file not found: {path}")
        try:
            with Image.open(path) as img:
                img.load()
                return _pil_to_rgb(img, str(path))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ImageReadError(f"cannot read image {path}: {exc}") from exc
    raise TypeError(f"expected a path, PIL image or numpy array, got {type(image).__name__}")


def list_images(inputs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, image extensions only) and glob patterns.

    Raises:
        FileNotFoundError: an input matches nothing; names it.
    """
    import glob

    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS))
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise FileNotFoundError(f"no image matches input {item!r}")
            found.extend(matches)
    seen: set[Path] = set()
    unique = []
    for p in found:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique
