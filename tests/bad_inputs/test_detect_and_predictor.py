"""Bad inputs of ``ovdet detect``, ``OVPredictor``, image reading and vocabulary resolution:
each case asserts the exact outcome, the right result or the error type plus a message that
names the culprit.

Tiny models with random weights (a tiny open_clip text encoder from ``tiny_clip_config``),
12 tiny images. ``ovdet detect`` runs in-process through ``ovdet.cli.main`` (exit status and
the one-line error), except the kill / resume case, which runs it as a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ovdet.cli import main as cli
from ovdet.predictor import OVPredictor
from ovdet.text import resolve_vocabulary, save_class_embeddings
from ovdet.text.clip_models import tiny_clip_config
from ovdet.utils.errors import InputError
from ovdet.utils.image import ImageReadError, load_image

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig
from detectron2.data import transforms as T
from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings

model = LazyConfig.load({root!r} + "/configs/common/models/ov_rcnn_small_fpn.py").model
encoder = L(OpenCLIPTextEncoder.from_config)(config={clip!r}, seed=0, device="cpu")
model.text_encoder = {text_encoder}
cls = model.roi_heads.box_predictor.classifier
cls.train_embeddings = L(build_class_embeddings)(
    encoder=encoder, classes=["cat", "dog"], templates=["a {{}}."])
cls.temperature = 1.0  # random weights: keep class scores away from underflow
model.roi_heads.box_predictor.test_topk_per_image = 3
model.vocabulary = ["cat", "dog"]
dataloader = dict(test=dict(mapper=dict(augmentations=[
    L(T.ResizeShortestEdge)(short_edge_length=64, max_size=96)])))
"""

NUM_IMAGES = 12


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Configs (with / without a text encoder), weights, 12 images, embeddings files."""
    from ovdet.engine.build import model_from_config

    root = tmp_path_factory.mktemp("detect_world")
    clip = root / "clip.json"
    clip.write_text(json.dumps(tiny_clip_config(embed_dim=16)))
    for name, encoder in (("cfg.py", "encoder"), ("cfg_noenc.py", "None")):
        text = CONFIG.format(root=str(ROOT), clip=str(clip), text_encoder=encoder)
        (root / name).write_text(textwrap.dedent(text))
    torch.manual_seed(0)
    model, _ = model_from_config(str(root / "cfg.py"), None, device="cpu")
    torch.save({"model": model.state_dict()}, root / "weights.pth")
    images = root / "images"
    images.mkdir()
    rs = np.random.RandomState(0)
    for i in range(NUM_IMAGES):
        arr = np.full((48, 64, 3), 230, np.uint8)
        x, y = rs.randint(0, 40), rs.randint(0, 30)
        arr[y : y + 15, x : x + 20] = rs.randint(0, 255, 3)
        Image.fromarray(arr).save(images / f"im{i:02d}.png")
    emb = torch.nn.functional.normalize(torch.randn(2, 16, generator=torch.Generator()), dim=1)
    save_class_embeddings(root / "emb.npy", emb, names=["fox", "owl"])
    save_class_embeddings(root / "emb8.npy", torch.randn(2, 8), names=["fox", "owl"])
    np.save(root / "bare.npy", emb.numpy())  # no names sidecar
    (root / "three.txt").write_text("fox\nowl\nbat\n")
    (root / "classes.txt").write_text("cat\ndog\n")
    return root


def base_args(world: Path, out: Path, *extra: str) -> list[str]:
    return [
        "detect",
        "--config", str(world / "cfg.py"),
        "--weights", str(world / "weights.pth"),
        "--input", str(world / "images"),
        "--output", str(out),
        "--score-thresh", "0.0",
        "--device", "cpu",
        *extra,
    ]  # fmt: skip


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def final_bytes(out: Path) -> dict[str, bytes]:
    files = {n: (out / n).read_bytes() for n in ("results.json", "detections.json", "errors.json")}
    for p in sorted((out / "vis").glob("*.png")):
        files[f"vis/{p.name}"] = p.read_bytes()
    return files


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    """An uninterrupted run (vocabulary cat,dog; batch 2; pictures on)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert cli(base_args(world, out, "--vocab", "cat,dog", "--batch-size", "2")) == 0
    return out


# ------------------------------------------------------------------------------ vocabulary
def _write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


VOCAB_CASES = [
    # (id, spec (callable of tmp_path), kwargs, expected names or (exception, message regex))
    ("file-missing-no-suffix", lambda t: "my_classes", {"kind": "file",
     "option": "--vocab-file"}, (FileNotFoundError, r"--vocab-file my_classes not found")),
    ("auto-missing-txt", lambda t: str(t / "classes.txt"), {},
     (FileNotFoundError, r"classes\.txt not found")),
    ("auto-missing-with-separator", lambda t: "data/my_classes", {},
     (FileNotFoundError, r"data/my_classes not found")),
    ("names-looks-like-file", lambda t: "classes.txt", {"kind": "names", "option": "--vocab"},
     (ValueError, r"--vocab 'classes\.txt' looks like a file path.*--vocab-file classes\.txt")),
    ("names-existing-file", lambda t: _write(t, "mine", "a\nb\n"), {"kind": "names"},
     (ValueError, r"names an existing file")),
    ("auto-existing-file-no-suffix", lambda t: _write(t, "mine", "a\n# c\n\nb\n"), {},
     ["a", "b"]),
    ("names-single-word", lambda t: "zebra", {"kind": "names"}, ["zebra"]),
    ("file-builtin-name", lambda t: "coco", {"kind": "file", "option": "--vocab-file"},
     (FileNotFoundError, r"--vocab-file coco not found.*--vocab coco")),
    ("file-is-folder", lambda t: str(t), {"kind": "file"}, (IsADirectoryError, "is a folder")),
    ("file-not-utf8", lambda t: _write(t, "v.txt", b"\xff\xfe\x00c\x00a"), {},
     (ValueError, r"v\.txt is not UTF-8")),
    ("file-comma-line", lambda t: _write(t, "v.txt", "cat,dog\n"), {},
     (ValueError, r"line 1 of names file .*v\.txt has a comma")),
    ("file-bom", lambda t: _write(t, "v.txt", "\ufeffcat\r\ndog\r\n"), {}, ["cat", "dog"]),
    ("file-empty", lambda t: _write(t, "v.txt", "# nothing\n"), {},
     (ValueError, r"v\.txt contains no class names")),
    ("file-duplicates", lambda t: _write(t, "v.txt", "cat\ndog\ncat\n"), {},
     (ValueError, r"'cat' \(line 1 of .*and line 3")),
    ("json-list", lambda t: _write(t, "v.json", '["cat", "dog"]'), {}, ["cat", "dog"]),
    ("json-coco-categories", lambda t: _write(
        t, "v.json", '{"categories": [{"id": 7, "name": "dog"}, {"id": 2, "name": "cat"}]}'),
     {}, ["cat", "dog"]),
    ("json-not-names", lambda t: _write(t, "v.json", '{"a": 1}'), {},
     (ValueError, r"v\.json holds a json dict")),
    ("list-non-string", lambda t: ["cat", 3], {}, (TypeError, r"entry 1 is 3 \(int\)")),
    ("set-unordered", lambda t: {"cat", "dog"}, {}, (TypeError, "a set has no order")),
    ("empty-spec", lambda t: "  ", {"kind": "names"}, (ValueError, "empty vocabulary spec")),
    ("comma-list-empty-entry", lambda t: "cat,,dog", {"kind": "names"},
     (ValueError, "empty class name at position 1")),
]  # fmt: skip


@pytest.mark.parametrize(
    "make, kwargs, expected", [c[1:] for c in VOCAB_CASES], ids=[c[0] for c in VOCAB_CASES]
)
def test_vocabulary_resolution(tmp_path, monkeypatch, make, kwargs, expected):
    monkeypatch.chdir(tmp_path)
    spec = make(tmp_path)
    if isinstance(expected, list):
        assert resolve_vocabulary(spec, **kwargs) == expected
    else:
        with pytest.raises(expected[0], match=expected[1]):
            resolve_vocabulary(spec, **kwargs)


# ------------------------------------------------------------------------------ images
RGB = np.random.RandomState(0).randint(0, 256, (5, 7, 3), dtype=np.uint8)
GRAY = RGB[:, :, 0]


def _gray3(gray):
    return np.repeat(gray[:, :, None], 3, axis=2)


def _rgba(alpha: int):
    return np.concatenate([RGB, np.full((5, 7, 1), alpha, np.uint8)], axis=2)


def _over_white(rgb, alpha):
    return np.round(rgb * (alpha / 255) + 255 * (1 - alpha / 255)).astype(np.uint8)


IMAGE_CASES = [
    # (id, input (callable), expected RGB uint8 array or (exception, message regex))
    ("uint8-hwc", lambda: RGB, RGB),
    ("uint16-full-range", lambda: RGB.astype(np.uint16) * 257, RGB),
    ("uint16-big-endian", lambda: (RGB.astype(np.uint16) * 257).astype(">u2"), RGB),
    ("int32-0-255", lambda: RGB.astype(np.int32), RGB),
    ("int64-0-65535", lambda: RGB.astype(np.int64) * 257, RGB),
    ("int8-0-127", lambda: (RGB // 2).astype(np.int8), RGB // 2),
    ("float32-0-1", lambda: RGB.astype(np.float32) / 255, RGB),
    ("float64-0-255", lambda: RGB.astype(np.float64), RGB),
    ("float16-0-1", lambda: (RGB / 255).astype(np.float16), RGB),
    ("float-overshoot-clipped", lambda: np.clip(RGB / 255 * 1.005 - 0.002, -1, 2), None),
    ("float-all-zero", lambda: np.zeros((2, 2, 3)), np.zeros((2, 2, 3), np.uint8)),
    ("bool-mask", lambda: GRAY > 127, _gray3(np.where(GRAY > 127, 255, 0).astype(np.uint8))),
    ("gray-hw", lambda: GRAY, _gray3(GRAY)),
    ("gray-hw1", lambda: GRAY[:, :, None], _gray3(GRAY)),
    ("gray-alpha-hw2", lambda: np.stack([GRAY, np.full_like(GRAY, 255)], axis=2), _gray3(GRAY)),
    ("rgba-opaque", lambda: _rgba(255), RGB),
    ("rgba-half", lambda: _rgba(128), _over_white(RGB, 128)),
    ("rgba-float-0-1", lambda: _rgba(0).astype(np.float32) / 255, np.full_like(RGB, 255)),
    ("chw-3", lambda: RGB.transpose(2, 0, 1), RGB),
    ("chw-1", lambda: GRAY[None], _gray3(GRAY)),
    ("one-pixel-hwc", lambda: RGB[:1, :1], RGB[:1, :1]),
    ("one-pixel-gray", lambda: GRAY[:1, :1], _gray3(GRAY[:1, :1])),
    ("fortran-order", lambda: np.asfortranarray(RGB), RGB),
    ("negative-strides", lambda: RGB[::-1, ::-1], RGB[::-1, ::-1]),
    ("channel-view-bgr", lambda: RGB[:, :, ::-1], RGB[:, :, ::-1]),
    ("torch-uint8-chw", lambda: torch.from_numpy(RGB).permute(2, 0, 1), RGB),
    ("torch-float-chw-0-1", lambda: torch.from_numpy(RGB).permute(2, 0, 1).float() / 255, RGB),
    ("torch-hwc", lambda: torch.from_numpy(RGB), RGB),
    ("torch-gray-hw", lambda: torch.from_numpy(GRAY), _gray3(GRAY)),
    ("nan-pixels", lambda: np.where(RGB > 250, np.nan, RGB / 255),
     (ImageReadError, r"values are NaN or infinite")),
    ("inf-pixels", lambda: np.full((3, 3), np.inf), (ImageReadError, "NaN or infinite")),
    ("all-negative-float", lambda: -RGB.astype(np.float32) / 255 - 0.1,
     (ImageReadError, r"below 0.*normalised")),
    ("normalised-float", lambda: (RGB / 255 - 0.45) / 0.22, (ImageReadError, r"normalised")),
    ("negative-int", lambda: RGB.astype(np.int16) - 12, (ImageReadError, "down to -7")),
    ("float-over-255", lambda: RGB * 4.0 + 1, (ImageReadError, r"go up to .*\[0, 255\]")),
    ("int-over-65535", lambda: np.full((2, 2), 70000, np.int32), (ImageReadError, "up to 70000")),
    ("ambiguous-chw", lambda: np.zeros((3, 10, 4), np.uint8), (ImageReadError, "ambiguous")),
    ("zero-size", lambda: np.zeros((0, 5, 3), np.uint8), (ImageReadError, r"empty.*\(0, 5, 3\)")),
    ("seven-channels", lambda: np.zeros((5, 6, 7), np.uint8), (ImageReadError, r"\(5, 6, 7\)")),
    ("batch-of-one", lambda: RGB[None], (ImageReadError, "batch of one image")),
    ("one-dimensional", lambda: np.zeros(5, np.uint8), (ImageReadError, r"\(5,\) \(1 axes\)")),
    ("complex-dtype", lambda: RGB.astype(np.complex64), (ImageReadError, "unsupported pixel")),
    ("object-dtype", lambda: np.array([[object()]]), (ImageReadError, "unsupported pixel")),
    ("list-of-images", lambda: [RGB, RGB], (TypeError, "predict_batch")),
    ("bytes", lambda: b"\x89PNG", (TypeError, "got bytes")),
]  # fmt: skip


@pytest.mark.parametrize(
    "make, expected", [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES]
)
def test_image_arrays(make, expected):
    image = make()
    if expected is None:  # overshoot: clipped, not refused
        out = load_image(image)
        assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
        assert np.abs(out.astype(int) - RGB.astype(int)).max() <= 2
    elif isinstance(expected, np.ndarray):
        out = load_image(image)
        assert out.dtype == np.uint8 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, expected)
    else:
        with pytest.raises(expected[0], match=expected[1]):
            load_image(image)


def _pil(mode: str, color, size=(3, 2)) -> Image.Image:
    return Image.new(mode, size, color)


PIL_CASES = [
    # (id, PIL image (callable), expected RGB of every pixel, or (exception, regex))
    ("mode-1", lambda: _pil("1", 1), (255, 255, 255)),
    ("mode-L", lambda: _pil("L", 128), (128, 128, 128)),
    ("mode-P", lambda: _pil("RGB", (10, 20, 30)).convert("P", palette=Image.Palette.ADAPTIVE),
     (10, 20, 30)),
    ("mode-P-transparent", lambda: _p_transparent(), (255, 255, 255)),
    ("mode-RGB", lambda: _pil("RGB", (10, 20, 30)), (10, 20, 30)),
    ("mode-RGBA-transparent", lambda: _pil("RGBA", (10, 20, 30, 0)), (255, 255, 255)),
    ("mode-RGBA-opaque", lambda: _pil("RGBA", (10, 20, 30, 255)), (10, 20, 30)),
    ("mode-RGBa-premultiplied", lambda: _pil("RGBa", (100, 0, 0, 128)), (227, 127, 127)),
    ("mode-LA", lambda: _pil("LA", (100, 0)), (255, 255, 255)),
    ("mode-La-premultiplied", lambda: _pil("La", (100, 128)), (227, 227, 227)),
    ("mode-PA", lambda: _pil("RGBA", (10, 20, 30, 0)).convert("PA"), (255, 255, 255)),
    ("mode-RGBX", lambda: _pil("RGBX", (10, 20, 30, 0)), (10, 20, 30)),
    ("mode-CMYK", lambda: _pil("CMYK", (0, 0, 0, 0)), (255, 255, 255)),
    ("mode-YCbCr", lambda: _pil("RGB", (200, 40, 40)).convert("YCbCr"), None),
    ("mode-LAB", lambda: _pil("RGB", (200, 40, 40)).convert("LAB"), None),
    ("mode-HSV", lambda: _pil("HSV", (0, 255, 255)), (255, 0, 0)),
    ("mode-I-8bit-values", lambda: _pil("I", 100), (100, 100, 100)),
    ("mode-I-16bit-values", lambda: _pil("I", 25700), (100, 100, 100)),
    ("mode-I;16", lambda: _pil("I;16", 25700), (100, 100, 100)),
    ("mode-I;16B", lambda: _pil("I;16B", 65535), (255, 255, 255)),
    ("mode-F-0-1", lambda: _pil("F", 0.5), (128, 128, 128)),
    ("mode-F-0-255", lambda: _pil("F", 200.0), (200, 200, 200)),
    ("mode-F-nan", lambda: _pil("F", float("nan")), (ImageReadError, r"mode F.*NaN")),
    ("mode-I-negative", lambda: _pil("I", -5), (ImageReadError, r"mode I.*down to -5")),
    ("zero-size", lambda: _pil("RGB", 0, size=(0, 0)), (ImageReadError, r"empty \(0 x 0")),
]  # fmt: skip


def _p_transparent() -> Image.Image:
    img = Image.new("P", (3, 2), 0)
    img.putpalette([10, 20, 30] * 256)
    img.info["transparency"] = 0
    return img


@pytest.mark.parametrize(
    "make, expected", [c[1:] for c in PIL_CASES], ids=[c[0] for c in PIL_CASES]
)
def test_pil_modes(make, expected):
    image = make()
    if isinstance(expected, tuple) and isinstance(expected[0], type):
        with pytest.raises(expected[0], match=expected[1]):
            load_image(image)
        return
    out = load_image(image)
    assert out.dtype == np.uint8 and out.shape == (image.height, image.width, 3)
    if expected is None:  # colour spaces: PIL's own conversion to RGB
        expected = np.asarray(image.convert("RGB"))[0, 0]
    assert (out == np.asarray(expected, np.uint8)).all()


def _png_bytes(arr) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


FILE_CASES = [
    # (id, make (tmp_path -> path), expected array or (exception, regex))
    ("missing", lambda t: t / "nope.jpg", (ImageReadError, r"not found: .*nope\.jpg")),
    ("folder", lambda t: t, (ImageReadError, "is a folder")),
    ("text-file", lambda t: Path(_write(t, "a.png", "hello")), (ImageReadError,
     r"a\.png: not an image")),
    ("empty-file", lambda t: Path(_write(t, "e.jpg", b"")), (ImageReadError, r"e\.jpg")),
    ("truncated-png", lambda t: Path(_write(t, "cut.png", _png_bytes(
        np.random.RandomState(1).randint(0, 256, (64, 64, 3), dtype=np.uint8))[:-400])),
     (ImageReadError, r"cut\.png \(truncated or corrupt\)")),
    ("png-16bit-gray", lambda t: Path(_write(t, "d.png", _png_bytes(
        GRAY.astype(np.uint16) * 257))), _gray3(GRAY)),
    ("png-rgba", lambda t: Path(_write(t, "a.png", _png_bytes(_rgba(128)))),
     _over_white(RGB, 128)),
    ("exif-rotated-jpeg", lambda t: _exif_rotated(t), "rotated"),
]  # fmt: skip


def _exif_rotated(tmp_path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "r.jpg"
    Image.new("RGB", (8, 4), (200, 10, 10)).save(path, exif=exif)
    return path


@pytest.mark.parametrize(
    "make, expected", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_image_files(tmp_path, make, expected):
    path = make(tmp_path)
    if isinstance(expected, tuple):
        with pytest.raises(expected[0], match=expected[1]):
            load_image(path)
    elif isinstance(expected, str):  # EXIF orientation applied: 8 x 4 shown as 4 x 8
        assert load_image(path).shape == (8, 4, 3)
    else:
        np.testing.assert_array_equal(load_image(str(path)), expected)


# ------------------------------------------------------------------------------ predictor
@pytest.fixture(scope="module")
def predictor(world):
    return OVPredictor.from_config(
        str(world / "cfg.py"), str(world / "weights.pth"), device="cpu", score_thresh=0.0
    )


@pytest.fixture(scope="module")
def predictor_without_encoder(world):
    return OVPredictor.from_config(str(world / "cfg_noenc.py"), str(world / "weights.pth"),
                                   device="cpu")  # fmt: skip


PREDICTOR_VOCAB_CASES = [
    ("string", "star", (TypeError, r"got the string 'star'.*\['star'\]")),
    ("non-strings", [1, 2], (TypeError, r"entry 0 is 1 \(int\)")),
    ("empty-name", ["cat", ""], (ValueError, "empty class name at index 1")),
    ("blank-name", ["cat", "  "], (ValueError, "empty class name at index 1")),
    ("duplicates", ["cat", "dog", "cat"], (ValueError, r"duplicate class name 'cat'.*0 and 2")),
    ("empty-list", [], (ValueError, "is empty")),
    ("set", {"cat", "dog"}, (TypeError, "a set has no order")),
    ("bytes", b"cat", (TypeError, "string")),
]


@pytest.mark.parametrize(
    "vocabulary, expected",
    [c[1:] for c in PREDICTOR_VOCAB_CASES],
    ids=[c[0] for c in PREDICTOR_VOCAB_CASES],
)
def test_predictor_vocabulary(predictor, vocabulary, expected):
    before = predictor.vocabulary
    with pytest.raises(expected[0], match=expected[1]):
        predictor.predict(RGB, vocabulary=vocabulary)
    assert predictor.vocabulary == before  # a refused vocabulary changes nothing


def test_predictor_names_without_text_encoder(predictor_without_encoder):
    with pytest.raises(InputError, match=r"no text encoder.*embed-text.*--embeddings"):
        predictor_without_encoder.predict(RGB, vocabulary=["cow", "pig"])
    # the config's own names need no encoding; embeddings work
    out = predictor_without_encoder.predict(RGB, vocabulary=["cat", "dog"])
    assert out["image_size"] == (5, 7)
    emb = np.random.RandomState(0).randn(3, 16).astype(np.float32)
    predictor_without_encoder.set_vocabulary(emb, names=["a", "b", "c"])
    assert predictor_without_encoder.vocabulary == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"expected 16 .*got 8"):
        predictor_without_encoder.set_vocabulary(torch.randn(3, 8))


@pytest.mark.parametrize(
    "thresh, expected",
    [(1.5, (ValueError, r"\[0, 1\].*1\.5")), (-0.1, (ValueError, r"\[0, 1\]")),
     (math.nan, (ValueError, r"\[0, 1\].*nan")), ("0.5", (TypeError, "number"))],
    ids=["above-1", "negative", "nan", "string"],
)  # fmt: skip
def test_predictor_score_thresh(predictor, thresh, expected):
    with pytest.raises(expected[0], match=expected[1]):
        predictor.predict(RGB, score_thresh=thresh)
    with pytest.raises(expected[0], match=expected[1]):
        OVPredictor(predictor.model, score_thresh=thresh)


def test_predictor_batches_and_image_sizes(predictor):
    predictor.set_vocabulary(["cat", "dog"])
    assert predictor.predict_batch([]) == []
    with pytest.raises(TypeError, match=r"predict_batch takes a list.*predict\(image\)"):
        predictor.predict_batch(RGB)
    with pytest.raises(TypeError, match="use predict_batch"):
        predictor.predict([RGB, RGB])
    image = np.random.RandomState(2).randint(0, 256, (40, 60, 3), dtype=np.uint8)
    hwc = predictor.predict(image)
    # the same picture as a CHW float tensor in [0, 1]: the same detections
    chw = predictor.predict(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    assert hwc["image_size"] == chw["image_size"] == (40, 60)
    np.testing.assert_allclose(hwc["boxes"], chw["boxes"], atol=1e-4)
    batch = predictor.predict_batch(np.stack([image, image]))  # a 4-D batch
    assert len(batch) == 2 and batch[0]["image_size"] == (40, 60)
    one = predictor.predict(np.array([[[9, 9, 9]]], np.uint8))  # 1 x 1 image
    assert one["image_size"] == (1, 1)
    assert (one["boxes"] >= 0).all() and (one["boxes"] <= 1 + 1e-4).all()
    with pytest.raises(ImageReadError, match=r"1 x 5000 pixels is too thin"):
        predictor.predict(np.zeros((1, 5000, 3), np.uint8))
    with pytest.raises(ImageReadError, match=r"not found: .*missing\.png"):
        predictor.predict("missing.png")


# ------------------------------------------------------------------------------ detect: refused
def _detect_case(world: Path, tmp: Path, case: str) -> list[str]:
    out = tmp / "out"
    args = base_args(world, out)
    vocab = ["--vocab", "cat,dog"]
    if case == "vocab-file-missing":
        return base_args(world, out, "--vocab-file", "my_classes")  # relative, no suffix
    if case == "vocab-empty":
        return base_args(world, out, "--vocab", "")
    if case == "vocab-duplicates":
        return base_args(world, out, "--vocab", "cat,dog,cat")
    if case == "vocab-is-a-file-name":
        return base_args(world, out, "--vocab", "classes.txt")
    if case == "vocab-file-empty":
        return base_args(world, out, "--vocab-file", _write(tmp, "e.txt", "\n# none\n"))
    if case == "embeddings-without-names":
        return base_args(world, out, "--embeddings", str(world / "bare.npy"))
    if case == "names-file-wrong-length":
        return base_args(world, out, "--embeddings", str(world / "emb.npy"), "--names-file",
                         str(world / "three.txt"))  # fmt: skip
    if case == "names-file-without-embeddings":
        return base_args(world, out, *vocab, "--names-file", str(world / "three.txt"))
    if case == "embeddings-wrong-width":
        return base_args(world, out, "--embeddings", str(world / "emb8.npy"))
    if case == "embeddings-missing":
        return base_args(world, out, "--embeddings", str(tmp / "none.npy"))
    if case == "vocab-without-text-encoder":
        args[args.index(str(world / "cfg.py"))] = str(world / "cfg_noenc.py")
        return args + ["--vocab", "cow,pig"]
    if case == "config-missing":
        args[args.index(str(world / "cfg.py"))] = str(tmp / "nope.py")
        return args + vocab
    if case == "weights-missing":
        args[args.index(str(world / "weights.pth"))] = str(tmp / "nope.pth")
        return args + vocab
    if case == "weights-text-file":
        args[args.index(str(world / "weights.pth"))] = _write(tmp, "w.pth", "not weights\n")
        return args + vocab
    if case == "input-missing":
        args[args.index(str(world / "images"))] = str(tmp / "nothing*.png")
        return args + vocab
    if case == "input-empty-folder":
        (tmp / "empty").mkdir()
        args[args.index(str(world / "images"))] = str(tmp / "empty")
        return args + vocab
    if case == "output-is-a-file":
        args[args.index(str(out))] = _write(tmp, "file.txt", "x")
        return args + vocab
    if case == "score-thresh-above-1":
        args[args.index("0.0")] = "1.5"
        return args + vocab
    if case == "score-thresh-nan":
        args[args.index("0.0")] = "nan"
        return args + vocab
    if case == "batch-size-0":
        return args + vocab + ["--batch-size", "0"]
    if case == "device-unknown":
        args[args.index("cpu")] = "gpu"
        return args + vocab
    raise AssertionError(case)


DETECT_REFUSED = [
    # (case, exit status, regex the one-line error must match)
    ("vocab-file-missing", 2, r"--vocab-file my_classes not found"),
    ("vocab-empty", 2, "empty vocabulary spec"),
    ("vocab-duplicates", 2, r"duplicate class names.*'cat'"),
    ("vocab-is-a-file-name", 2, r"--vocab 'classes\.txt' looks like a file.*--vocab-file"),
    ("vocab-file-empty", 2, r"e\.txt contains no class names"),
    ("embeddings-without-names", 2, r"--embeddings .*bare\.npy needs --names-file"),
    ("names-file-wrong-length", 2, r"emb\.npy has 2 rows but the vocabulary has 3 names"),
    ("names-file-without-embeddings", 2, r"--names-file names the rows of --embeddings"),
    ("embeddings-wrong-width", 2, r"--embeddings .*emb8\.npy.*expected 16.*got 8"),
    ("embeddings-missing", 2, r"--embeddings .*none\.npy not found"),
    ("vocab-without-text-encoder", 2, r"--vocab: this model has no text encoder.*--embeddings"),
    ("config-missing", 2, r"nope\.py"),
    ("weights-missing", 2, r"--weights .*nope\.pth not found"),
    ("weights-text-file", 2, r"w\.pth"),
    ("input-missing", 2, r"no image matches input .*nothing\*\.png"),
    ("input-empty-folder", 2, r"input folder .*empty.* holds no image files"),
    ("output-is-a-file", 2, r"--output .*file\.txt is a file"),
    ("score-thresh-above-1", 2, r"--score-thresh must be in \[0, 1\].*1\.5"),
    ("score-thresh-nan", 2, r"--score-thresh must be in \[0, 1\].*nan"),
    ("batch-size-0", 2, r"--batch-size must be an integer >= 1, got 0"),
    ("device-unknown", 2, r"--device 'gpu' is not a device"),
]


@pytest.mark.parametrize(
    "case, status, message", DETECT_REFUSED, ids=[c[0] for c in DETECT_REFUSED]
)
def test_detect_refused(world, tmp_path, capsys, monkeypatch, case, status, message):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, _detect_case(world, tmp_path, case))
    assert rc == status, err
    line = err.strip().splitlines()[-2]  # the error line, then the --debug hint
    assert line.startswith("ovdet detect: error: ")
    assert len(re.findall(message, line)) == 1, line
    assert "Traceback" not in err and not out
    outputs = tmp_path / "out"
    assert not (outputs / "run.json").exists() and not (outputs / "results.jsonl").exists()


def test_detect_unwritable_output_found_before_any_image(world, tmp_path, capsys, monkeypatch):
    import builtins

    import ovdet.detect.checks
    import ovdet.predictor

    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    real_open = builtins.open

    def open_refusing(path, *args, **kwargs):  # root ignores chmod: refuse as the kernel would
        if Path(path).parent == out:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the output folder was checked")

    monkeypatch.setattr(ovdet.detect.checks, "open", open_refusing, raising=False)
    monkeypatch.setattr(ovdet.predictor.OVPredictor, "from_config", no_model)
    try:
        rc, _, err = run_cli(capsys, base_args(world, out, "--vocab", "cat,dog", "--no-vis"))
    finally:
        out.chmod(0o755)
    assert rc == 2
    assert re.search(r"output folder .*locked is not writable \(Permission denied\)", err)
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------------------ detect: outputs
def test_detect_output_fields(world, reference):
    from pycocotools.coco import COCO

    run = json.loads((reference / "run.json").read_text())
    assert [i["file_name"] for i in run["images"]] == [
        str(world / "images" / f"im{i:02d}.png") for i in range(NUM_IMAGES)
    ]
    results = json.loads((reference / "results.json").read_text())
    assert results and {tuple(r) for r in results} == {
        ("image_id", "category_id", "bbox", "score", "segmentation", "category_name", "file_name")
    }
    names = {1: "cat", 2: "dog"}
    files = {i["id"]: i["file_name"] for i in run["images"]}
    for r in results:
        assert r["category_name"] == names[r["category_id"]]
        assert r["file_name"] == files[r["image_id"]]
    assert [r["image_id"] for r in results] == sorted(r["image_id"] for r in results)
    coco = COCO(str(reference / "detections.json"))
    assert coco.dataset["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == list(files.values())
    assert {tuple(i) for i in coco.dataset["images"]} == {("id", "file_name", "height", "width")}
    assert [a["id"] for a in coco.dataset["annotations"]] == list(range(1, len(results) + 1))
    assert json.loads((reference / "errors.json").read_text()) == []
    assert len(list((reference / "vis").glob("*.png"))) == NUM_IMAGES


def test_detect_same_command_again_resumes_with_nothing_to_do(world, reference, capsys):
    before = final_bytes(reference)
    args = base_args(world, reference, "--vocab", "cat,dog", "--batch-size", "2")
    rc, out, _ = run_cli(capsys, args)
    assert rc == 0 and json.loads(out)["resumed"] == NUM_IMAGES
    assert final_bytes(reference) == before


MIXED = [
    ("other-vocabulary", ["--vocab", "cat,dog,cow"], r"vocabulary: 2 names .* vs 3 names"),
    ("other-threshold", ["--vocab", "cat,dog", "--score-thresh", "0.5"],
     r"score threshold: 0\.0 vs 0\.5"),
    ("other-inputs", ["--vocab", "cat,dog", "--input", "IMG0"], r"inputs: 12 images vs 1"),
    ("other-overrides", ["--vocab", "cat,dog", "model.roi_heads.batch_size_per_image=8"],
     r"config overrides: \[\] vs"),
    ("vis-off", ["--vocab", "cat,dog", "--no-vis"], r"visualisation: on vs off"),
]  # fmt: skip


@pytest.mark.parametrize("extra, message", [c[1:] for c in MIXED], ids=[c[0] for c in MIXED])
def test_detect_refuses_to_mix_runs(world, reference, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = final_bytes(out)
    args = base_args(world, out, "--batch-size", "2")
    extra = [str(world / "images" / "im00.png") if e == "IMG0" else e for e in extra]
    if "--input" in extra:  # replace the inputs
        i = extra.index("--input")
        args[args.index("--input") + 1] = extra[i + 1]
        extra = extra[:i] + extra[i + 2 :]
    if "--score-thresh" in extra:
        i = extra.index("--score-thresh")
        args[args.index("--score-thresh") + 1] = extra[i + 1]
        extra = extra[:i] + extra[i + 2 :]
    rc, _, err = run_cli(capsys, args + extra)
    assert rc == 2
    assert "holds another detect run" in err and re.search(message, err), err
    assert "--overwrite" in err and "another --output" in err
    assert final_bytes(out) == before  # nothing of the other run touched


def test_detect_refuses_outputs_without_manifest_then_overwrite(world, reference, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "run.json").unlink()  # e.g. written by an older ovdet
    args = base_args(world, out, "--vocab", "cat,dog", "--batch-size", "2", "--no-vis")
    rc, _, err = run_cli(capsys, args)
    assert rc == 2 and re.search(
        r"holds detect outputs \(results\.jsonl, .*without a run\.json", err
    )
    (out / "notes.txt").write_text("mine")  # not an output of detect: kept
    rc, out_json, _ = run_cli(capsys, args + ["--overwrite"])
    assert rc == 0 and json.loads(out_json)["resumed"] == 0
    after = final_bytes(out)
    reference_json = {k: v for k, v in final_bytes(reference).items() if not k.startswith("vis/")}
    assert after == reference_json  # same detections; the old pictures were deleted
    assert (out / "notes.txt").read_text() == "mine"


def test_detect_torn_journal_line_is_redone(world, reference, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    for name in ("results.json", "detections.json", "errors.json"):
        (out / name).unlink()
    lines = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == NUM_IMAGES
    # killed while appending the last batch: 2 lines lost, half of one written
    (out / "results.jsonl").write_bytes(b"".join(lines[:-2]) + lines[-2][:40])
    args = base_args(world, out, "--vocab", "cat,dog", "--batch-size", "2")
    rc, out_json, _ = run_cli(capsys, args)
    assert rc == 0 and json.loads(out_json)["resumed"] == NUM_IMAGES - 2
    assert final_bytes(out) == final_bytes(reference)


def test_detect_unreadable_image_reported_and_retried(world, tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    for name in ("a.png", "c.png"):
        shutil.copy(world / "images" / "im00.png", images / name)
    (images / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = images  # the input folder itself: its pictures (vis/) do not become inputs
    args = base_args(world, out, "--vocab", "cat,dog")
    args[args.index(str(world / "images"))] = str(images)
    rc, out_json, err = run_cli(capsys, args)
    assert rc == 0 and json.loads(out_json)["failed"] == 1
    assert "skipping" in err and "b.png" in err
    errors = json.loads((out / "errors.json").read_text())
    assert [(e["image_id"], Path(e["file"]).name) for e in errors] == [(2, "b.png")]
    assert [i["id"] for i in json.loads((out / "detections.json").read_text())["images"]] == [1, 3]
    # the image is repaired: the same command retries it, and only it
    shutil.copy(world / "images" / "im01.png", images / "b.png")
    rc, out_json, _ = run_cli(capsys, args)
    summary = json.loads(out_json)
    assert rc == 0 and (summary["resumed"], summary["failed"], summary["images"]) == (2, 0, 3)
    assert json.loads((out / "errors.json").read_text()) == []
    assert sorted(p.name for p in (out / "vis").iterdir()) == [
        "000001_a.png",
        "000002_b.png",
        "000003_c.png",
    ]


SLOW_DETECT = """
import sys, time
from ovdet.utils.journal import Journal
_append = Journal.append
def append(self, entries):  # slow enough that the test can kill the run in the middle
    _append(self, entries)
    time.sleep(0.4)
Journal.append = append
from ovdet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_detect_killed_then_resumed_equals_uninterrupted_run(world, reference, tmp_path, capsys):
    out = tmp_path / "out"
    args = base_args(world, out, "--vocab", "cat,dog", "--batch-size", "2")
    journal = out / "results.jsonl"
    threads = str(torch.get_num_threads())  # the same float arithmetic as this process
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_DETECT, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and journal.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = journal.read_bytes().count(b"\n")
    assert 4 <= done < NUM_IMAGES
    assert not (out / "results.json").exists()
    rc, out_json, _ = run_cli(capsys, args)
    assert rc == 0 and json.loads(out_json)["resumed"] == done  # finished images not redone
    assert journal.read_bytes().count(b"\n") == NUM_IMAGES
    assert final_bytes(out) == final_bytes(reference)
