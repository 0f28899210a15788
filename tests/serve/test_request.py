"""Checking and decoding one ``/api/detect`` body (no server, no model)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ovdet.serve import ServeLimits, parse_detect_request
from ovdet.serve.request import PayloadTooLarge, RequestError, decode_image

from .conftest import body, png_bytes


def request(data: bytes | None = None, **kw) -> bytes:
    fields = {"file_name": "a.png", "vocabulary": ["cat", "dog"]}
    fields.update(kw)
    return body(
        png_bytes() if data is None else data, **{k: v for k, v in fields.items() if v is not None}
    )


def test_a_good_request_is_decoded():
    req = parse_detect_request(request(image_id=3, score_thresh=0.25), ServeLimits())
    assert req.image.shape == (48, 64, 3) and req.image.dtype == np.uint8
    assert (req.file_name, req.image_id, req.score_thresh) == ("a.png", 3, 0.25)
    assert req.prompt.vocabulary == ["cat", "dog"] and req.prompt.kind == "vocabulary"
    # defaults; a file name is a name, never a path
    req = parse_detect_request(body(png_bytes(), vocabulary=["x"]), ServeLimits())
    assert (req.file_name, req.image_id, req.score_thresh) == ("image", 1, 0.3)
    req = parse_detect_request(request(file_name="C:\\x\\y/b.png"), ServeLimits())
    assert req.file_name == "b.png"


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"no newline", "one line of json"),
        (png_bytes(), "first line is not json"),  # a PNG's signature holds a newline
        (b'["cat"]\n' + png_bytes(), "json object"),
        (b"{cat\n" + png_bytes(), "not json"),
    ],
)
def test_the_body_is_a_json_line_then_the_file(raw, message):
    with pytest.raises(RequestError, match=message):
        parse_detect_request(raw, ServeLimits())


@pytest.mark.parametrize(
    "data, message",
    [
        (png_bytes()[:60], "truncated or corrupt"),
        (b"hello, not an image", "not an image file"),
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cannot read"),
    ],
)
def test_corrupt_uploads_are_named(data, message):
    with pytest.raises(RequestError, match=message) as info:
        decode_image(data, "broken.png", ServeLimits())
    assert "broken.png" in str(info.value) and info.value.status == 400


def test_size_and_pixel_caps():
    with pytest.raises(PayloadTooLarge, match="over this server's cap") as info:
        decode_image(png_bytes(), "a.png", ServeLimits(max_upload_bytes=100))
    assert info.value.status == 413
    # a large, flat image compresses to a small file: refused from its header, not decoded
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(PayloadTooLarge, match="4000 x 3000 pixels"):
        decode_image(buf.getvalue(), "big.png", ServeLimits(max_pixels=10_000_000))
    with pytest.raises(PayloadTooLarge, match="over this server's cap"):
        parse_detect_request(request(), ServeLimits(max_upload_bytes=30))


def test_only_listed_formats_are_decoded():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PPM")
    with pytest.raises(RequestError, match="not an image file"):
        decode_image(buf.getvalue(), "a.ppm", ServeLimits())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"vocabulary": [f"n{i}" for i in range(5)]}, "over this server's cap of 4"),
        ({"vocabulary": ["x" * 11]}, "over the cap of 10"),
        ({"vocabulary": []}, "empty"),
        ({"vocabulary": "cat"}, "list of class names"),
        ({"vocabulary": ["cat", "cat"]}, "duplicate"),
        ({"caption": "a cat"}, "exactly one of"),
        ({"vocabulary": None, "caption": "a cat"}, "takes class names, not a caption"),
        ({"score_thresh": 1.5}, "score_thresh"),
        ({"score_thresh": "high"}, "score_thresh"),
        ({"image_id": 0}, "image_id"),
        ({"file_name": ""}, "file_name"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_bad_fields_are_named(change, message):
    limits = ServeLimits(max_vocabulary=4, max_name_chars=10)
    with pytest.raises(RequestError, match=message):
        parse_detect_request(request(**change), limits)
    with pytest.raises(RequestError, match="json line is"):  # refused before it is parsed
        parse_detect_request(request(vocabulary=["x" * 1000] * 40), limits)


def test_captions_for_grounding_models():
    raw = body(png_bytes(), caption="a red circle")
    req = parse_detect_request(raw, ServeLimits(), ("caption", "vocabulary"))
    assert req.prompt.caption == "a red circle" and req.prompt.kind == "caption"
    with pytest.raises(RequestError, match="over the cap of 5"):
        parse_detect_request(raw, ServeLimits(max_caption_chars=5), ("caption",))


def test_limits_must_be_positive_integers():
    with pytest.raises(ValueError, match="max_pixels"):
        ServeLimits(max_pixels=0)
    limits = ServeLimits()
    assert limits.max_body_bytes > limits.max_upload_bytes + limits.max_head_bytes
