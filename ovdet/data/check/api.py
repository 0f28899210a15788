"""The public checks: a json file, a registered dataset, a parsed dict."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ovdet.data.check.annotations import check_annotations
from ovdet.data.check.categories import check_categories
from ovdet.data.check.images import check_image_files, check_images
from ovdet.data.check.report import CheckReport, Collector, Issue
from ovdet.data.datasets import json_error_message

IMAGE_MODES = ("none", "exist", "decode")


def _load_json(path: str) -> tuple[Any, str | None]:
    """(parsed json, None) or (None, error text naming the line)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), None
    except json.JSONDecodeError as e:
        return None, json_error_message(path, e)
    except UnicodeDecodeError as e:
        return None, f"{path} is not UTF-8 text ({e}); save it as UTF-8 json"


def check_coco_dataset(
    json_file: str | os.PathLike | Mapping,
    image_root: str | os.PathLike | None = None,
    *,
    images: str = "exist",
) -> CheckReport:
    """Check a COCO instances json (and its images) before training on it.

    Args:
        json_file: the json path (or an already parsed dict).
        image_root: the folder the images' ``file_name`` are relative to; None: image files
            are not checked.
        images: ``"exist"`` (each file exists: one directory listing per folder, tens of
            thousands of images per second), ``"decode"`` (each file is decoded and its size
            compared with ``height``/``width``: slow) or ``"none"``.

    Returns:
        A :class:`CheckReport`; ``report.raise_if_errors()`` raises
        :class:`~ovdet.data.datasets.COCOFormatError` naming the errors.

    Raises:
        FileNotFoundError: ``json_file`` or ``image_root`` does not exist.
        ValueError: unknown ``images`` mode.
    """
    if images not in IMAGE_MODES:
        raise ValueError(f"images={images!r}: use one of {list(IMAGE_MODES)}")
    if isinstance(json_file, Mapping):
        return check_coco_dict(json_file, "<dict>", image_root, images=images)
    path = os.fspath(json_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO-format json not found: {path}")
    if image_root is not None and images != "none" and not os.path.isdir(image_root):
        raise FileNotFoundError(f"image folder not found: {os.fspath(image_root)}")
    data, error = _load_json(path)
    if error is not None:
        report = CheckReport(path, stats={"images_checked": "none"})
        report.issues.append(
            Issue("json.invalid", "error", error + ". Fix the json syntax.", count=1)
        )
        return report
    return check_coco_dict(data, path, image_root, images=images)


def check_registered_dataset(name: str, images: str = "exist") -> CheckReport:
    """Check a dataset registered with :func:`ovdet.data.register_ov_dataset` (its metadata
    gives ``json_file`` and ``image_root``). The default is the fast path (image files
    exist; no decoding), meant to run before training.

    Raises:
        KeyError: ``name`` is not registered. ValueError: it was not registered with a json.
        FileNotFoundError: its json file or image folder is missing.
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if name not in DatasetCatalog:
        raise KeyError(
            f"dataset {name!r} is not registered; register it with "
            "ovdet.data.register_ov_dataset(name, json_file, image_root)"
        )
    meta = MetadataCatalog.get(name)
    json_file = meta.get("json_file")
    if json_file is None:
        raise ValueError(
            f"dataset {name!r} has no 'json_file' metadata (not registered with "
            "ovdet.data.register_ov_dataset): nothing to check"
        )
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"annotation file of dataset {name!r} not found: {json_file}. See datasets/README.md."
        )
    return check_coco_dataset(json_file, meta.get("image_root"), images=images)


def check_coco_dict(
    data: Any,
    source: str,
    image_root: str | os.PathLike | None = None,
    *,
    images: str = "none",
) -> CheckReport:
    """:func:`check_coco_dataset` on a parsed json (``source`` names it in messages)."""
    if images not in IMAGE_MODES:
        raise ValueError(f"images={images!r}: use one of {list(IMAGE_MODES)}")
    root = os.fspath(image_root) if image_root is not None else None
    mode = images if root is not None else "none"
    report = CheckReport(source, stats={"images_checked": mode, "image_root": root})
    c = Collector()
    if not isinstance(data, Mapping):
        what = "a json list (a results file?)" if isinstance(data, list) else type(data).__name__
        c.add(
            "json.not_object",
            "error",
            "a COCO dataset is a json object with 'images', 'annotations' and 'categories'; "
            f"this file is {what}",
            None,
        )
        report.issues = c.issues()
        return report
    lists: dict[str, list] = {}
    for key in ("images", "annotations", "categories"):
        value = data.get(key)
        if value is None:
            c.add(
                f"json.missing_{key}",
                "error",
                f"no top-level '{key}' list; a COCO instances json has 'images', 'annotations' "
                "and 'categories' (use [] for none)",
                f"top-level keys: {sorted(map(str, data))[:10]}",
            )
            lists[key] = []
        elif not isinstance(value, list):
            c.add(
                f"json.{key}_not_list",
                "error",
                f"'{key}' must be a json list of objects",
                f"'{key}' is a {type(value).__name__}",
            )
            lists[key] = []
        else:
            lists[key] = value
    is_lvis = any(
        isinstance(im, Mapping) and "neg_category_ids" in im for im in lists["images"][:10]
    )
    cats = check_categories(lists["categories"], c)
    imgs = check_images(lists["images"], c, is_lvis)
    used_cats, images_with_anns = check_annotations(lists["annotations"], imgs, cats, c, is_lvis)
    if (
        "annotations" in data
        and not lists["annotations"]
        and isinstance(data.get("annotations"), list)
    ):
        c.add(
            "annotations.empty",
            "error",
            "the dataset has no annotations: nothing to train on",
            None,
        )
    if "images" in data and not lists["images"] and isinstance(data.get("images"), list):
        c.add("images.empty", "error", "the dataset has no images", None)
    if (
        "categories" in data
        and not lists["categories"]
        and isinstance(data.get("categories"), list)
    ):
        c.add("categories.empty", "error", "the dataset has no categories", None)
    for cid, (i, name) in cats.items():
        if cid not in used_cats:
            hint = (
                ": a superclass or background entry (Roboflow, labelme2coco)? it stays a class "
                "of the vocabulary unless removed"
                if cid == 0
                else ""
            )
            c.add(
                "category.unused",
                "warning",
                "categories that no annotation uses (harmless; they stay classes without "
                "training examples)",
                f"categories[{i}] (id={cid}, name={name!r}){hint}",
            )
    for iid, img in imgs.items():
        if iid not in images_with_anns:
            c.add(
                "image.no_annotations",
                "warning",
                "images without annotations (kept as negatives in training unless the loader "
                "filters empty images)",
                f"images[{img['index']}] (id={iid}, file_name={img['file_name']!r})",
            )
    if mode != "none" and root is not None:
        check_image_files(imgs, root, mode, c)
    report.issues = c.issues()
    report.stats.update(
        images=len(lists["images"]),
        annotations=len(lists["annotations"]),
        categories=len(lists["categories"]),
    )
    return report
