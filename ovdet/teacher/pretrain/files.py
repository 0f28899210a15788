"""Input files of small-CLIP pretraining: COCO instances / captions readers, data directory.

:func:`resolve_data_files` finds the files of a data directory (layout in
:mod:`ovdet.teacher.pretrain`); :func:`read_coco_instances` and :func:`read_captions` read them
into records and check that every image exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

__all__ = [
    "CaptionedImage",
    "CocoInstances",
    "DataFiles",
    "ObjectCrop",
    "read_captions",
    "read_coco_instances",
    "resolve_data_files",
]


@dataclass(frozen=True)
class ObjectCrop:
    """One annotated object: image file, box (x, y, w, h) in pixels, contiguous class index."""

    file: Path
    box: tuple[float, float, float, float]
    label: int


@dataclass(frozen=True)
class CaptionedImage:
    """One image file with its captions."""

    file: Path
    captions: tuple[str, ...]


@dataclass
class CocoInstances:
    """A COCO instances json reduced to what pretraining needs.

    Attributes:
        json_file: the file read.
        image_root: folder the images' ``file_name`` are relative to.
        classnames: category names in category-id order (contiguous index = position).
        crops: non-crowd annotations with a positive-area box.
        images: {image id: file path}.
    """

    json_file: Path
    image_root: Path
    classnames: list[str]
    crops: list[ObjectCrop]
    images: dict[int, Path]


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"json file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid json ({e})") from e


def _field(record: Any, key: str, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise KeyError(f"{where}: missing field {key!r}")
    return record[key]


def _resolve_root(json_file: Path, file_names: Sequence[str], candidates: Sequence[Path]) -> Path:
    """First candidate folder that holds the first image, and check that all images exist."""
    if not file_names:
        return candidates[0]
    probe = file_names[0]
    root = next((c for c in candidates if (c / probe).is_file()), None)
    if root is None:
        tried = ", ".join(str(c / probe) for c in candidates)
        raise FileNotFoundError(
            f"{json_file}: image {probe!r} (images[0].file_name) not found; tried {tried}. "
            "Pass the image folder explicitly (--image-root / --val-image-root)."
        )
    missing = [f for f in file_names if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{json_file}: {len(missing)} image file(s) missing under {root}, e.g. "
            f"{[str(root / m) for m in missing[:3]]}"
        )
    return root


def read_coco_instances(
    json_file: Union[str, Path],
    image_roots: Sequence[Union[str, Path]],
    *,
    classnames: Optional[Sequence[str]] = None,
) -> CocoInstances:
    """Read a COCO instances json and check that its images exist.

    Args:
        json_file: COCO instances json (``images``, ``annotations``, ``categories``).
        image_roots: candidate folders for ``file_name``; the first that holds the first image
            is used.
        classnames: if given, the category names are mapped onto this vocabulary (index =
            position); a category of the json missing from it is an error.

    Returns:
        :class:`CocoInstances`.
    """
    json_file = Path(json_file)
    data = _load_json(json_file)
    images_raw = _field(data, "images", str(json_file))
    anns_raw = _field(data, "annotations", str(json_file))
    cats_raw = _field(data, "categories", str(json_file))
    cats = sorted(
        (
            (
                int(_field(c, "id", f"{json_file}: categories[{i}]")),
                str(_field(c, "name", f"{json_file}: categories[{i}]")),
            )
            for i, c in enumerate(cats_raw)
        ),
    )
    names = [n for _, n in cats]
    if classnames is None:
        classnames = names
    vocab = {n: i for i, n in enumerate(classnames)}
    unknown = [n for n in names if n not in vocab]
    if unknown:
        raise ValueError(f"{json_file}: categories {unknown} are not in the vocabulary")
    cat_to_label = {cid: vocab[n] for cid, n in cats}
    file_names: dict[int, str] = {}
    for i, im in enumerate(images_raw):
        where = f"{json_file}: images[{i}]"
        file_names[int(_field(im, "id", where))] = str(_field(im, "file_name", where))
    roots = [Path(r) for r in image_roots]
    root = _resolve_root(json_file, list(file_names.values()), roots)
    crops = []
    for i, ann in enumerate(anns_raw):
        where = f"{json_file}: annotations[{i}]"
        if ann.get("iscrowd", 0):
            continue
        image_id = int(_field(ann, "image_id", where))
        if image_id not in file_names:
            raise KeyError(f"{where}: image_id {image_id} is not in 'images'")
        cat = int(_field(ann, "category_id", where))
        if cat not in cat_to_label:
            raise KeyError(f"{where}: category_id {cat} is not in 'categories'")
        box = [float(v) for v in _field(ann, "bbox", where)]
        if len(box) != 4:
            raise ValueError(f"{where}: bbox must be [x, y, w, h], got {box}")
        if box[2] < 1 or box[3] < 1:
            continue  # degenerate box: nothing to crop
        crops.append(ObjectCrop(root / file_names[image_id], tuple(box), cat_to_label[cat]))
    images = {k: root / v for k, v in file_names.items()}
    return CocoInstances(json_file, root, list(classnames), crops, images)


def read_captions(
    json_file: Union[str, Path],
    image_roots: Sequence[Union[str, Path]],
    *,
    fallback_images: Optional[dict[int, Path]] = None,
) -> list[CaptionedImage]:
    """Read a COCO captions json into (image file, captions) records.

    Args:
        json_file: ``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}``.
        image_roots: candidate folders for ``file_name``.
        fallback_images: {image id: path} used when the json has no ``images`` list (e.g. from
            the instances json).

    Returns:
        One record per image with at least one caption, in image-id order.
    """
    json_file = Path(json_file)
    data = _load_json(json_file)
    anns = _field(data, "annotations", str(json_file))
    if "images" in data:
        file_names = {}
        for i, im in enumerate(data["images"]):
            where = f"{json_file}: images[{i}]"
            file_names[int(_field(im, "id", where))] = str(_field(im, "file_name", where))
        root = _resolve_root(json_file, list(file_names.values()), [Path(r) for r in image_roots])
        paths = {k: root / v for k, v in file_names.items()}
    elif fallback_images is not None:
        paths = dict(fallback_images)
    else:
        raise KeyError(f"{json_file}: missing field 'images' (needed to find the image files)")
    captions: dict[int, list[str]] = {}
    for i, ann in enumerate(anns):
        where = f"{json_file}: annotations[{i}]"
        image_id = int(_field(ann, "image_id", where))
        text = _field(ann, "caption", where)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: 'caption' must be a non-empty string, got {text!r}")
        if image_id not in paths:
            raise KeyError(f"{where}: image_id {image_id} has no entry in 'images'")
        captions.setdefault(image_id, []).append(text.strip())
    return [CaptionedImage(paths[k], tuple(v)) for k, v in sorted(captions.items())]


@dataclass
class DataFiles:
    """Resolved input files of a pretraining run (:func:`resolve_data_files`)."""

    train_json: Path
    train_image_roots: list[Path]
    val_json: Optional[Path]
    val_image_roots: list[Path]
    captions_json: Optional[Path]
    base: Optional[list[str]] = None
    novel: Optional[list[str]] = None


def resolve_data_files(
    data_dir: Optional[Union[str, Path]] = None,
    *,
    train_json: Optional[Union[str, Path]] = None,
    val_json: Optional[Union[str, Path]] = None,
    captions_json: Optional[Union[str, Path]] = None,
    split_json: Optional[Union[str, Path]] = None,
    image_root: Optional[Union[str, Path]] = None,
    val_image_root: Optional[Union[str, Path]] = None,
    novel: Optional[Sequence[str]] = None,
) -> DataFiles:
    """Find the training / validation / captions / split files of a data directory.

    Explicit paths win over the ``data_dir`` layout (see :mod:`ovdet.teacher.pretrain`); an
    explicit path that does not exist is an error, a default one that does not exist is skipped
    (no validation, no captions, no split).
    """
    d = Path(data_dir) if data_dir is not None else None

    def _explicit(p: Optional[Union[str, Path]], what: str) -> Optional[Path]:
        if p is None:
            return None
        p = Path(p)
        if not p.is_file():
            raise FileNotFoundError(f"{what} not found: {p}")
        return p

    def _default(*names: str) -> Optional[Path]:
        if d is None:
            return None
        return next((d / n for n in names if (d / n).is_file()), None)

    train = _explicit(train_json, "training json") or _default("train_all.json", "train.json")
    if train is None:
        raise FileNotFoundError(
            f"no training json: expected {d}/train_all.json or {d}/train.json "
            "(or pass --train-json)"
        )
    val = _explicit(val_json, "validation json") or _default("val.json")
    caps = _explicit(captions_json, "captions json") or _default("captions_train.json")
    split = _explicit(split_json, "split json") or _default("split.json")

    def _roots(
        explicit: Optional[Union[str, Path]], split_name: str, json_path: Path
    ) -> list[Path]:
        if explicit is not None:
            return [Path(explicit)]
        base = d if d is not None else json_path.parent
        return [base / "images" / split_name, base / "images", base]

    base_names = novel_names = None
    if novel is not None:
        novel_names = list(novel)
    elif split is not None:
        s = _load_json(split)
        novel_names = [str(n) for n in _field(s, "novel", str(split))]
        base_names = [str(n) for n in s["base"]] if "base" in s else None
    return DataFiles(
        train_json=train,
        train_image_roots=_roots(image_root, "train", train),
        val_json=val,
        val_image_roots=_roots(val_image_root, "val", val) if val is not None else [],
        captions_json=caps,
        base=base_names,
        novel=novel_names,
    )
