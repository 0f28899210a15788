"""Reading user images of every common kind into RGB ``uint8`` arrays (H, W, 3).

:func:`load_image` takes a path, a PIL image, a numpy array or a torch tensor. Each input is
either converted as described here or refused with an :class:`ImageReadError` (a
``ValueError``) whose message names the input and says what to pass instead; nothing is
guessed silently.

**Layout** (arrays and tensors):

* ``(H, W)``: grayscale;
* ``(H, W, C)`` with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA): numpy's, PIL's and
  OpenCV's layout (channels are taken as RGB: convert OpenCV's BGR yourself);
* ``(C, H, W)`` with C = 1, 3 or 4 (torchvision's layout) is transposed to ``(H, W, C)``:
  for a torch tensor whenever its first axis has 1, 3 or 4 entries; for a numpy array only
  when its last axis cannot be channels. A numpy array that reads both ways with different
  images (first axis 3 or 4, last axis 1-4, middle axis over 4, e.g. ``(3, 480, 4)``) is
  refused as ambiguous: transpose it to ``(H, W, C)`` yourself.
* Anything else is refused: an empty axis (0-size array), a batch ``(N, ...)`` (pass the
  images one by one, or as a list to ``OVPredictor.predict_batch``), other channel counts.

**Values** (per dtype; the whole array, alpha included, is scaled by one rule):

* ``uint8``: as is; ``bool``: False -> 0, True -> 255;
* ``uint16`` (and PIL's ``I;16`` modes): 16-bit, ``round(v * 255 / 65535)``;
* other integers (``int8/16/32/64``, ``uint32/64``, PIL mode ``I``): 8-bit values when the
  largest is <= 255, otherwise 16-bit values scaled as ``uint16``; negative values or values
  over 65535 are refused;
* floats (``float16/32/64``, PIL mode ``F``): [0, 1] when the largest is <= 1, otherwise
  [0, 255] (then ``round(v * 255)``, resp. ``round(v)``). Resampling overshoot is clipped:
  values above the range by at most 1% of it, and values below 0 by at most 1% of the range
  when at most 1% of the values are negative. NaN or infinite pixels, other negative values
  (a mean/std-normalised image: pass it before normalisation) and values over 255 are
  refused.

Alpha is composited over white. Other dtypes (complex, object, strings) are refused.

**PIL images**: every mode (``1, L, P, RGB, RGBA, CMYK, YCbCr, LAB, HSV, I, F, LA, PA, La,
RGBa, RGBX, I;16*``) is converted to RGB (alpha over white, premultiplied alpha undone, 16-bit
and float modes by the value rules above); the EXIF orientation is applied; a multi-frame
image gives its current frame.

**Paths**: a missing path, a folder, a file that is not an image and a truncated or corrupt
image file are refused, each naming the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, Any]
"""A path, PIL image, numpy array or torch tensor (see the module docstring)."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")

_OVERSHOOT = 0.01  # float values this fraction of the range outside it are clipped
_CHANNELS_HWC = (1, 2, 3, 4)
_CHANNELS_CHW = (1, 3, 4)


class ImageReadError(ValueError):
    """An image could not be read or understood; the message names it."""


def _shape(arr: np.ndarray) -> str:
    return str(tuple(int(s) for s in arr.shape))


def _float_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite).sum())
        raise ImageReadError(
            f"{name}: {bad} of {arr.size} values are NaN or infinite; pass an image with "
            "finite pixel values"
        )
    lo, hi = float(arr.min()), float(arr.max())
    scale = 255.0 if hi <= 1.0 + _OVERSHOOT else 1.0  # [0, 1] or [0, 255]
    top = 255.0 / scale
    if lo < -_OVERSHOOT * top or (lo < 0 and (arr < 0).mean() > _OVERSHOOT):
        raise ImageReadError(
            f"{name}: float pixel values go down to {lo:.4g}, below 0: this looks like a "
            "normalised (mean/std) image or not an image; pass the image before "
            "normalisation, with values in [0, 1] or [0, 255]"
        )
    if hi > 255.0 * (1.0 + _OVERSHOOT):
        raise ImageReadError(
            f"{name}: float pixel values go up to {hi:.4g}; expected [0, 1] or [0, 255] "
            "(scale the image into one of these ranges)"
        )
    return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)


def _int_to_uint8(arr: np.ndarray, name: str, *, bits: int | None = None) -> np.ndarray:
    """Integers -> uint8; ``bits`` 8 or 16 fixes the scale, None infers it from the values."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 1:
        return arr.astype(np.uint8, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ImageReadError(
            f"{name}: integer pixel values go down to {lo}; pixel values must be >= 0 "
            "(0..255 for 8-bit, 0..65535 for 16-bit images)"
        )
    if hi > 65535:
        raise ImageReadError(
            f"{name}: integer pixel values go up to {hi}; expected 0..255 (8-bit) or 0..65535 "
            "(16-bit): scale the image into one of these ranges"
        )
    if bits is None:
        bits = 8 if hi <= 255 else 16
    if bits == 8:
        return arr.astype(np.uint8)
    return np.round(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def _to_uint8(arr: np.ndarray, name: str, *, bits: int | None = None) -> np.ndarray:
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.uint8) * np.uint8(255)
    if kind == "u" and arr.dtype.itemsize == 2:
        return _int_to_uint8(arr, name, bits=16)
    if kind in "ui":
        return _int_to_uint8(arr, name, bits=bits)
    if kind == "f":
        return _float_to_uint8(arr, name)
    raise ImageReadError(
        f"{name}: unsupported pixel type {arr.dtype}; pass uint8, uint16, other integers, "
        "float or bool pixels"
    )


def _from_torch(image: Any) -> np.ndarray | None:
    """A torch tensor as a numpy array, (C, H, W) -> (H, W, C); None if not a tensor."""
    torch = _torch()
    if torch is None or not isinstance(image, torch.Tensor):
        return None
    tensor = image.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    arr = tensor.numpy()
    if arr.ndim == 3 and arr.shape[0] in _CHANNELS_CHW and arr.shape[1] and arr.shape[2]:
        return arr.transpose(1, 2, 0)  # torchvision's (C, H, W)
    return arr


def _torch():
    import sys

    return sys.modules.get("torch")  # a tensor can only exist when torch is imported


def _to_hwc(arr: np.ndarray, name: str, *, hwc: bool = False) -> np.ndarray:
    """(H, W), (H, W, C) or unambiguous (C, H, W) -> (H, W, C); ``hwc``: known (H, W, C)."""
    hint = (
        "expected an (H, W) grayscale, (H, W, C) or (C, H, W) image with C = 1, 3 or 4 "
        "(or 2: gray + alpha)"
    )
    if arr.size == 0:
        raise ImageReadError(f"{name}: the array is empty (shape {_shape(arr)}); {hint}")
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 4 and arr.shape[0] == 1:
        raise ImageReadError(
            f"{name}: shape {_shape(arr)} is a batch of one image; pass image[0] (several "
            "images: a list to predict_batch)"
        )
    if arr.ndim != 3:
        raise ImageReadError(f"{name}: got shape {_shape(arr)} ({arr.ndim} axes); {hint}")
    first, middle, last = arr.shape
    if hwc and last in _CHANNELS_HWC:
        return arr
    hwc, chw = last in _CHANNELS_HWC, first in _CHANNELS_CHW
    if hwc and first in (3, 4) and middle > 4:
        raise ImageReadError(
            f"{name}: shape {_shape(arr)} is ambiguous: (H, W, C) = a {first} x {middle} image "
            f"with {last} channels, or (C, H, W) = a {middle} x {last} image with {first} "
            "channels; transpose it to (H, W, C) yourself (e.g. arr.transpose(1, 2, 0))"
        )
    if hwc:
        return arr
    if chw:
        return arr.transpose(1, 2, 0)
    raise ImageReadError(f"{name}: got shape {_shape(arr)}; {hint}")


def _composite_over_white(arr: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 2|4) with alpha last -> (H, W, 1|3) over a white background."""
    alpha = arr[:, :, -1:].astype(np.float64) / 255.0
    color = arr[:, :, :-1].astype(np.float64)
    return np.round(color * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def to_rgb_array(image: Any, name: str = "image", *, bits: int | None = None) -> np.ndarray:
    """An array or tensor of any supported layout and dtype -> RGB uint8 (H, W, 3).

    See the module docstring for the layouts and value ranges accepted and how each is
    converted.

    Args:
        image: numpy array or torch tensor.
        name: how errors name the image.
        bits: 8 or 16 fixes the scale of integer pixels (None: the dtype's rule).

    Raises:
        ImageReadError: an unsupported or ambiguous shape, dtype or value range.
    """
    arr = _from_torch(image)
    from_tensor = arr is not None
    if arr is None:
        arr = np.asarray(image)
    # a tensor's (C, H, W) was transposed by _from_torch: its layout is decided
    arr = _to_hwc(arr, name, hwc=from_tensor and arr.ndim == 3)
    arr = _to_uint8(arr, name, bits=bits)
    if arr.shape[2] in (2, 4):
        arr = _composite_over_white(arr)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    if img.width == 0 or img.height == 0:
        raise ImageReadError(f"{name}: the image is empty ({img.width} x {img.height} pixels)")
    try:
        img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError):
        pass  # a broken EXIF block: keep the pixels as stored
    mode = img.mode
    if mode.startswith("I;16"):
        return to_rgb_array(np.asarray(img).astype(np.uint16), name, bits=16)
    if mode in ("I", "F"):
        return to_rgb_array(np.asarray(img), name)
    if mode == "La":  # premultiplied gray + alpha: over white is gray + (255 - alpha)
        arr = np.asarray(img).astype(np.int32)
        gray = np.clip(arr[:, :, 0] + 255 - arr[:, :, 1], 0, 255).astype(np.uint8)
        return to_rgb_array(gray, name)
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode == "P" and "transparency" in img.info):
        return to_rgb_array(np.asarray(img.convert("RGBA")), name)
    try:
        rgb = img.convert("RGB")
    except ValueError as exc:
        raise ImageReadError(f"{name}: PIL image mode {mode!r} cannot be converted to RGB") from exc
    return np.ascontiguousarray(np.asarray(rgb))


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise ImageReadError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as img:
            img.load()
            return _pil_to_rgb(img, str(path))
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {path}: not an image file PIL can read") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # truncated or corrupt data (PIL: "image file is truncated", "broken data stream")
        raise ImageReadError(f"cannot read image {path} (truncated or corrupt): {exc}") from exc


def load_image(image: ImageLike) -> np.ndarray:
    """Read an image path, PIL image, numpy array or torch tensor as RGB ``uint8`` (H, W, 3).

    See the module docstring for what is accepted and how it is converted.

    Raises:
        ImageReadError: the file is missing, a folder, not an image, truncated or corrupt, or
            the array / PIL image has an unsupported or ambiguous shape, dtype or value
            range; the message names the input.
        TypeError: ``image`` is none of the kinds above.
    """
    if isinstance(image, Image.Image):
        try:
            return _pil_to_rgb(image, f"PIL image (mode {image.mode})")
        except ImageReadError:
            raise
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"PIL image (mode {image.mode}): {exc}") from exc
    if isinstance(image, np.ndarray):
        return to_rgb_array(image, f"array of shape {_shape(image)} and dtype {image.dtype}")
    torch = _torch()
    if torch is not None and isinstance(image, torch.Tensor):
        return to_rgb_array(
            image, f"tensor of shape {tuple(image.shape)} and dtype {str(image.dtype)[6:]}"
        )
    if isinstance(image, (str, os.PathLike)):
        return _read_file(Path(image).expanduser())
    kind = type(image).__name__
    extra = "; several images go to predict_batch" if isinstance(image, (list, tuple)) else ""
    raise TypeError(
        f"expected an image: a path, PIL image, numpy array or torch tensor, got {kind}{extra}"
    )


def list_images(inputs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, image extensions only) and glob patterns.

    The order is deterministic: inputs in the order given, a folder's images sorted by path,
    a glob's matches sorted; a file met twice is kept at its first place.

    Raises:
        FileNotFoundError: an input matches nothing, or a folder holds no image files; names
            it.
    """
    import glob

    found: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            images = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS)
            images = [q for q in images if q.is_file()]
            if not images:
                raise FileNotFoundError(
                    f"input folder {item!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)})"
                )
            found.extend(images)
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
