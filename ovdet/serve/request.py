"""One detection request to ``ovdet serve``: its body, checked and decoded.

``POST /api/detect`` with ``Content-Type: application/x-ovdet-detect`` and a body of one line
of json (the request), a newline, then the image file's bytes as they are::

    {"file_name": "photo.jpg", "image_id": 1, "vocabulary": ["cat", "dog"], "score_thresh": 0.3}
    <the bytes of photo.jpg>

* ``file_name``: written as the results' ``file_name`` (default "image");
* ``image_id``: >= 1, written as the results' ``image_id`` (default 1);
* exactly one of ``vocabulary`` (class names) or ``caption`` (grounding models);
* ``score_thresh``: in [0, 1] (default 0.3).

The image travels as it is (no base64: a third less to send, nothing to re-encode; the page
sends the dropped file itself), so ``curl`` can call it too::

    (echo '{"vocabulary": ["cat"]}'; cat cat.jpg) | curl --data-binary @- \
        -H "Content-Type: application/x-ovdet-detect" http://127.0.0.1:7860/api/detect

Everything is checked against :class:`~ovdet.serve.limits.ServeLimits` before the pixels are
decoded: the file's size, then its width x height from the file header. A file that is not an
image, or is truncated or corrupt, is refused with a message naming the file.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ovdet.predictor import check_score_thresh
from ovdet.serve.limits import ServeLimits
from ovdet.text.vocabulary import validate_names
from ovdet.utils.errors import InputError
from ovdet.utils.image import ImageReadError, load_image

__all__ = [
    "IMAGE_FORMATS",
    "MEDIA_TYPE",
    "DetectRequest",
    "PayloadTooLarge",
    "Prompt",
    "RequestError",
    "decode_image",
    "parse_detect_request",
    "split_body",
]

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG includes MPO
"""Image formats the server decodes (PIL format names); other files are refused unread."""

_MAX_FILE_NAME = 255
_FIELDS = {"file_name", "image_id", "vocabulary", "caption", "score_thresh"}
MEDIA_TYPE = "application/x-ovdet-detect"
"""The request's Content-Type: not one a web page elsewhere may send without asking first
(CORS), so other sites cannot make a visitor's browser use a local server."""


class RequestError(InputError):
    """A request the server refuses; ``status`` is its HTTP status (400: bad request)."""

    status = 400


class PayloadTooLarge(RequestError):
    """An upload over a size or pixel cap (HTTP 413)."""

    status = 413


@dataclass(frozen=True)
class Prompt:
    """What to detect: class names (``vocabulary``) or a ``caption``; exactly one is set."""

    vocabulary: list[str] | None = None
    caption: str | None = None

    @property
    def kind(self) -> str:
        return "caption" if self.caption is not None else "vocabulary"


@dataclass(frozen=True)
class DetectRequest:
    """A checked request.

    Attributes:
        image: (H, W, 3) uint8 RGB, EXIF orientation applied.
        file_name: the uploaded file's name (no folders).
        image_id: the results' ``image_id``.
        prompt: what to detect.
        score_thresh: lowest score returned.
        decode_s: seconds spent decoding the image.
    """

    image: np.ndarray
    file_name: str
    image_id: int
    prompt: Prompt
    score_thresh: float
    decode_s: float = 0.0


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def decode_image(data: bytes, name: str, limits: ServeLimits) -> np.ndarray:
    """An uploaded image file's bytes -> (H, W, 3) uint8 RGB.

    Raises:
        PayloadTooLarge: the file or its width x height is over the caps.
        RequestError: not an image of :data:`IMAGE_FORMATS`, or truncated or corrupt.
    """
    if len(data) > limits.max_upload_bytes:
        raise PayloadTooLarge(
            f"{name}: the file is {_megabytes(len(data))}, over this server's cap of "
            f"{_megabytes(limits.max_upload_bytes)} per image; upload a smaller or recompressed "
            "image (the server's --max-upload-mb sets the cap)"
        )
    if not data:
        raise RequestError(f"cannot read {name}: the file is empty")
    try:
        img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError as exc:
        raise RequestError(
            f"cannot read {name}: not an image file ({', '.join(IMAGE_FORMATS)} are accepted)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # a broken header
        raise RequestError(f"cannot read {name}: the file is corrupt ({exc})") from exc
    with img:
        width, height = img.size
        if width * height > limits.max_pixels:
            raise PayloadTooLarge(
                f"{name}: the image is {width} x {height} pixels "
                f"({width * height / 1e6:.1f} megapixels), over this server's cap of "
                f"{limits.max_pixels / 1e6:.1f} megapixels; downscale it (the server's "
                "--max-megapixels sets the cap)"
            )
        try:
            img.load()
            return load_image(img)
        except ImageReadError as exc:
            raise RequestError(f"cannot read {name}: {exc}") from exc
        except Image.DecompressionBombError as exc:
            raise PayloadTooLarge(f"cannot read {name}: {exc}") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # truncated or corrupt data (PIL: "image file is truncated", "broken data stream")
            raise RequestError(
                f"cannot read {name}: the file is truncated or corrupt ({exc})"
            ) from exc


def _file_name(value: Any) -> str:
    if value is None:
        return "image"
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f'"file_name" must be a non-empty string, got {value!r}')
    name = value.replace("\\", "/").rsplit("/", 1)[-1].strip()  # a name, never a path
    if not name or len(name) > _MAX_FILE_NAME or any(ord(c) < 32 for c in name):
        raise RequestError(
            f'"file_name" must be a file name of at most {_MAX_FILE_NAME} printable '
            f"characters, got {value[:80]!r}"
        )
    return name


def _image_id(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise RequestError(f'"image_id" must be an integer >= 1, got {value!r}')
    return value


def _prompt(payload: dict[str, Any], limits: ServeLimits, prompts: tuple[str, ...]) -> Prompt:
    vocabulary, caption = payload.get("vocabulary"), payload.get("caption")
    if (vocabulary is None) == (caption is None):
        raise RequestError('give exactly one of "vocabulary" (class names) or "caption"')
    if caption is not None:
        if "caption" not in prompts:
            raise RequestError(
                "this model takes class names, not a caption (captions need a grounding "
                'model); send "vocabulary": ["name", ...]'
            )
        if not isinstance(caption, str) or not caption.strip():
            raise RequestError('"caption" must be a non-empty string')
        if len(caption) > limits.max_caption_chars:
            raise RequestError(
                f'"caption" has {len(caption)} characters, over the cap of '
                f"{limits.max_caption_chars}; shorten it"
            )
        return Prompt(caption=caption)
    if "vocabulary" not in prompts:
        raise RequestError('this model takes a caption, not class names; send "caption"')
    if isinstance(vocabulary, list) and len(vocabulary) > limits.max_vocabulary:
        raise RequestError(
            f"the vocabulary has {len(vocabulary)} names, over this server's cap of "
            f"{limits.max_vocabulary}; remove some (the server's --max-vocabulary sets the cap)"
        )
    try:
        names = validate_names(vocabulary, "vocabulary")
    except (TypeError, ValueError) as exc:
        raise RequestError(str(exc)) from exc
    for i, name in enumerate(names):
        if len(name) > limits.max_name_chars:
            raise RequestError(
                f"vocabulary: name {i} ({name[:40]!r}...) has {len(name)} characters, over the "
                f"cap of {limits.max_name_chars}; shorten it"
            )
    return Prompt(vocabulary=names)


def split_body(body: bytes, limits: ServeLimits) -> tuple[dict[str, Any], bytes]:
    """A request body -> (its json object, the image file's bytes).

    Raises:
        RequestError: no json line first, or not a json object.
    """
    head, newline, data = body.partition(b"\n")
    if not newline:
        raise RequestError(
            "the request body must be one line of json (the request), a newline, then the "
            "image file's bytes"
        )
    if len(head) > limits.max_head_bytes:
        raise RequestError(
            f"the request's json line is {len(head)} bytes, over the cap of "
            f"{limits.max_head_bytes}; send fewer or shorter class names"
        )
    try:
        payload = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(
            f"the request's first line is not json ({exc}); the body must be one line of json "
            "(the request), a newline, then the image file's bytes"
        ) from exc
    if not isinstance(payload, dict):
        raise RequestError("the request's first line must be a json object")
    return payload, data


def parse_detect_request(
    body: bytes, limits: ServeLimits, prompts: tuple[str, ...] = ("vocabulary",)
) -> DetectRequest:
    """Check a ``/api/detect`` body (json line, newline, image file) and decode its image.

    Args:
        body: the request body.
        limits: the server's caps.
        prompts: the prompt kinds the model takes ("vocabulary", "caption").

    Raises:
        RequestError: a missing, unknown or bad field, or an unreadable image (named).
        PayloadTooLarge: an image over the size or pixel caps.
    """
    payload, data = split_body(body, limits)
    unknown = sorted(set(payload) - _FIELDS)
    if unknown:
        raise RequestError(f"unknown field(s) {unknown}; the fields are {sorted(_FIELDS)}")
    file_name = _file_name(payload.get("file_name"))
    prompt = _prompt(payload, limits, prompts)
    try:
        score_thresh = check_score_thresh(payload.get("score_thresh", 0.3), '"score_thresh"')
    except (TypeError, ValueError) as exc:
        raise RequestError(str(exc)) from exc
    image_id = _image_id(payload.get("image_id"))
    start = time.perf_counter()
    image = decode_image(data, file_name, limits)
    return DetectRequest(
        image=image,
        file_name=file_name,
        image_id=image_id,
        prompt=prompt,
        score_thresh=score_thresh,
        decode_s=time.perf_counter() - start,
    )
