"""Checks of the ``images`` entries (ids, file names, sizes) and of the image files (exist;
decoded size against the json's)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from ovdet.data.check.fields import At, id_problem, is_int_id, is_number, short
from ovdet.data.check.report import Collector


def check_images(entries: list, c: Collector, is_lvis: bool) -> dict[Any, dict]:
    """id -> {index, file_name, height, width} of images with a valid id."""
    imgs: dict[Any, dict] = {}
    files: dict[str, int] = {}
    for i, im in enumerate(entries):
        if not isinstance(im, Mapping):
            c.add(
                "image.not_object",
                "error",
                "images entries must be json objects",
                f"images[{i}] = {short(im)}",
            )
            continue
        iid = im.get("id")
        where = At("images", i, iid)
        if "id" not in im:
            c.add("image.missing_id", "error", "images need an integer 'id'", f"images[{i}]")
            continue
        if not is_int_id(iid):
            c.add(
                "image.id_type",
                "error",
                'image ids must be integers (write 12, not "12"); annotations refer to them '
                "by 'image_id'",
                f"{where}: id is {id_problem(iid)}",
            )
            continue
        if iid in imgs:
            c.add(
                "image.duplicate_id",
                "error",
                "image ids must be unique (annotations of both would go to one image)",
                f"{where} repeats id {iid} of images[{imgs[iid]['index']}]",
            )
            continue
        file_name = im.get("file_name")
        if file_name is None and is_lvis and isinstance(im.get("coco_url"), str):
            parts = im["coco_url"].rstrip("/").split("/")
            file_name = "/".join(parts[-2:])
        if file_name is None:
            c.add("image.missing_file_name", "error", "images need a 'file_name'", where)
        elif not isinstance(file_name, str) or not file_name.strip():
            c.add(
                "image.file_name",
                "error",
                "'file_name' must be a non-empty path relative to the image folder",
                f"{where}: file_name={short(file_name)}",
            )
            file_name = None
        elif file_name in files:
            c.add(
                "image.duplicate_file_name",
                "warning",
                "two image entries name the same file (trained on twice; matching detections "
                "by file name is ambiguous)",
                f"{where} repeats {file_name!r} of images[{files[file_name]}]",
            )
        else:
            files[file_name] = i
        size: dict[str, float | None] = {}
        for key in ("height", "width"):
            v = im.get(key)
            if v is None:
                c.add(
                    "image.missing_size",
                    "error",
                    "images need 'height' and 'width' (pixels)",
                    f"{where}: no '{key}'",
                )
                size[key] = None
            elif not is_number(v) or not math.isfinite(v) or v <= 0 or v != int(v):
                c.add(
                    "image.size",
                    "error",
                    "'height' and 'width' must be positive integers (pixels)",
                    f"{where}: {key}={short(v)}",
                )
                size[key] = None
            else:
                size[key] = float(v)
        imgs[iid] = {
            "index": i,
            "file_name": file_name,
            "height": size["height"],
            "width": size["width"],
        }
    return imgs


def _listdir_cached(cache: dict[str, set[str] | None], folder: str) -> set[str] | None:
    if folder not in cache:
        try:
            cache[folder] = set(os.listdir(folder))
        except OSError:
            cache[folder] = None
    return cache[folder]


def check_image_files(imgs: dict[Any, dict], root: str, mode: str, c: Collector) -> None:
    """Existence via one directory listing per folder; ``decode``: size after EXIF rotation."""
    listings: dict[str, set[str] | None] = {}
    present: list[tuple[Any, dict, str]] = []
    for iid, img in imgs.items():
        name = img["file_name"]
        if not name:
            continue
        path = os.path.join(root, name)
        folder, base = os.path.split(os.path.normpath(path))
        listing = _listdir_cached(listings, folder)
        if listing is None or base not in listing:
            c.add(
                "image.missing_file",
                "error",
                f"image files not found under {root} (file_name is relative to the image "
                "folder); fix the path or remove the image",
                f"images[{img['index']}] (id={iid}): {name!r}",
            )
            continue
        present.append((iid, img, path))
    if mode != "decode":
        return
    from PIL import Image, UnidentifiedImageError

    for iid, img, path in present:
        where = f"images[{img['index']}] (id={iid}) {img['file_name']!r}"
        try:
            with Image.open(path) as im:
                im.load()
                w, h = im.size
                orientation = im.getexif().get(0x0112, 1)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            c.add(
                "image.unreadable",
                "error",
                "image files that cannot be decoded (corrupt, truncated or not an image); "
                "replace or remove them",
                f"{where}: {type(e).__name__}: {e}",
            )
            continue
        rotated = orientation in (5, 6, 7, 8)
        if rotated:
            w, h = h, w
        if img["width"] and img["height"] and (w, h) != (img["width"], img["height"]):
            hint = " (EXIF-rotated: detectron2 reads it rotated)" if rotated else ""
            c.add(
                "image.size_mismatch",
                "error",
                "image files whose size differs from the json's width/height (detectron2 "
                "raises a SizeMismatchError); fix 'width'/'height'",
                f"{where}: file is {w}x{h} (WxH){hint}, json says "
                f"{img['width']:g}x{img['height']:g}",
            )
