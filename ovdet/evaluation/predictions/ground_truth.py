"""Lookups into the ground truth: images by id and by (normalised) file name, categories by
(normalised) name."""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ovdet.data.check.fields import is_number


def _norm_name(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").casefold().split())


def _norm_path(path: str) -> str:
    path = path.replace("\\", "/")
    norm = posixpath.normpath(path)
    return norm[2:] if norm.startswith("./") else norm


def gt_file_name(image: Mapping) -> str | None:
    """An image's ``file_name``, or for LVIS (no file_name) the last two parts of its
    ``coco_url`` (``val2017/000000397133.jpg``)."""
    name = image.get("file_name")
    if isinstance(name, str) and name:
        return name
    url = image.get("coco_url")
    if isinstance(url, str) and url:
        return "/".join(url.rstrip("/").split("/")[-2:])
    return None


class GTIndex:
    """Lookups into a ground-truth dataset dict."""

    def __init__(self, gt: Mapping):
        self.images = {im["id"]: im for im in gt["images"]}
        self.cat_ids = sorted(c["id"] for c in gt["categories"])
        self.cat_names = {c["id"]: c["name"] for c in gt["categories"]}
        self.by_name: dict[str, list] = defaultdict(list)
        self.by_norm_name: dict[str, list] = defaultdict(list)
        for c in gt["categories"]:
            self.by_name[c["name"]].append(c["id"])
            self.by_norm_name[_norm_name(str(c["name"]))].append(c["id"])
        self.by_path: dict[str, list] = defaultdict(list)
        self.by_base: dict[str, list] = defaultdict(list)
        self.by_stem: dict[str, list] = defaultdict(list)
        for im in gt["images"]:
            name = gt_file_name(im)
            if name is None:
                continue
            norm = _norm_path(name)
            base = posixpath.basename(norm)
            self.by_path[norm].append(im["id"])
            self.by_base[base].append(im["id"])
            self.by_stem[posixpath.splitext(base)[0]].append(im["id"])

    def size(self, image_id: Any) -> tuple[float, float] | None:
        im = self.images.get(image_id)
        if im is None:
            return None
        h, w = im.get("height"), im.get("width")
        if is_number(h) and is_number(w) and h > 0 and w > 0:
            return float(h), float(w)
        return None

    def category(self, name: str) -> tuple[Any, str] | tuple[None, str]:
        """(GT id, "") or (None, why)."""
        ids = self.by_name.get(name)
        if ids is None:
            ids = self.by_norm_name.get(_norm_name(name))
        if not ids:
            return None, "unknown"
        if len(ids) > 1:
            return None, f"ambiguous (ground-truth categories {ids} share it)"
        return ids[0], ""

    def image(self, name: str, image_root: str | None, *, stem: bool) -> tuple[Any, str]:
        """(GT id, how) or (None, why)."""
        norm = _norm_path(name)
        ids = self.by_path.get(norm)
        if ids and len(ids) == 1:
            return ids[0], "same path"
        if image_root is not None:
            rel = _norm_path(os.path.relpath(os.path.abspath(name), os.path.abspath(image_root)))
            ids = self.by_path.get(rel)
            if ids and len(ids) == 1:
                return ids[0], "relative to the image root"
        parts = norm.split("/")
        for k in range(len(parts) - 1, 1, -1):
            ids = self.by_path.get("/".join(parts[-k:]))
            if ids and len(ids) == 1:
                return ids[0], "trailing path"
        base = parts[-1]
        ids = self.by_base.get(base)
        if ids:
            if len(ids) == 1:
                return ids[0], "basename"
            return None, f"ambiguous basename (ground-truth images {ids[:5]} share it)"
        if stem:
            ids = self.by_stem.get(base)
            if ids and len(ids) == 1:
                return ids[0], "stem"
        return None, "unknown"
