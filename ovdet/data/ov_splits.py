"""Derive the OV-COCO and OV-LVIS annotation files from the official ones.

Used by ``datasets/prepare_ov_coco.py`` and ``datasets/prepare_ov_lvis.py``
(docs/methods.md#open-vocabulary-detection-protocol). The functions take and return parsed
json dicts and never modify their input;
outputs share unchanged entries (images, annotations) with the input to save memory.

OV-COCO (from ``instances_{train,val}2017.json``):

* ``instances_train2017_base.json``: the 48 base categories, only their annotations, all
  train images (images whose objects are all novel stay, as negatives);
* ``instances_train2017_all.json``: the 65 OV-COCO categories and their annotations (oracle);
* ``instances_val2017_all.json``: val2017 restricted to the 65 categories (annotations of the
  other 15 classes dropped); evaluation marks the 17 novel ones.

OV-LVIS (from ``lvis_v1_{train,val}.json``):

* ``lvis_v1_train_base.json``: every annotation of a rare (``frequency == "r"``) category
  removed. All 1203 categories stay in ``categories``, so contiguous id ``i`` is the ``i``-th
  LVIS category in id order for train and val alike, which is row ``i`` of the 1203-row class
  embedding files (``lvis_v1_clip_a+cname.npy``); the 337 rare ones just have no box (their
  ``image_count``/``instance_count`` are set to 0, which zeroes their federated-loss weight).
  Training restricts its vocabulary to ``metadata.base_classes`` (866).
* ``lvis_v1_val.json``: annotations unchanged.

LVIS images have no ``file_name``, only ``coco_url``; both outputs get
``file_name = "<train2017|val2017>/<image>.jpg"`` so that ``load_coco_json`` can read them
with ``image_root = <datasets>/coco``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ovdet.data.builtin_meta import COCO_CATEGORIES, OV_COCO_BASE_IDS, OV_COCO_IDS
from ovdet.data.datasets import read_coco_json, validate_coco_dict
from ovdet.utils.io import write_json

__all__ = [
    "OV_COCO_FILES",
    "OV_LVIS_FILES",
    "filter_categories",
    "make_ov_coco_train",
    "make_ov_coco_val",
    "make_ov_lvis_train",
    "make_ov_lvis_val",
    "prepare_ov_coco",
    "prepare_ov_lvis",
]

# output file names (relative to the output folder)
OV_COCO_FILES = {
    "train_base": "instances_train2017_base.json",
    "train_all": "instances_train2017_all.json",
    "val": "instances_val2017_all.json",
}
OV_LVIS_FILES = {"train_base": "lvis_v1_train_base.json", "val": "lvis_v1_val.json"}

_COCO_IMAGE_FIELDS = ("id", "file_name", "height", "width")
_LVIS_IMAGE_FIELDS = ("id", "coco_url", "height", "width")


def filter_categories(
    data: Mapping,
    keep_category_ids: Iterable[int],
    *,
    annotation_category_ids: Iterable[int] | None = None,
) -> dict:
    """Restrict a COCO dict to some categories; every image is kept.

    Args:
        data: COCO instances dict (not modified).
        keep_category_ids: categories to list in ``categories`` (written in id order).
        annotation_category_ids: categories whose annotations are kept (default:
            ``keep_category_ids``); must be a subset of it.

    Returns:
        A new dict with the other top-level fields of ``data`` unchanged.
    """
    keep = set(keep_category_ids)
    ann_keep = keep if annotation_category_ids is None else set(annotation_category_ids)
    if not ann_keep <= keep:
        raise ValueError(
            f"annotation_category_ids {sorted(ann_keep - keep)} are not in keep_category_ids"
        )
    out = {k: v for k, v in data.items() if k not in ("categories", "annotations")}
    out["categories"] = sorted(
        (c for c in data["categories"] if c["id"] in keep), key=lambda c: c["id"]
    )
    out["annotations"] = [a for a in data["annotations"] if a["category_id"] in ann_keep]
    return out


def _check_coco_categories(data: Mapping, source: str) -> None:
    """The OV-COCO ids must mean what they mean in COCO 2017."""
    names = {c["id"]: c["name"] for c in data["categories"]}
    expected = dict(COCO_CATEGORIES)
    wrong = [
        f"id {i}: expected {expected[i]!r}, found {names.get(i)!r}"
        for i in OV_COCO_IDS
        if names.get(i) != expected[i]
    ]
    if wrong:
        raise ValueError(
            f"{source} does not have the COCO 2017 categories the OV-COCO split refers to "
            f"({'; '.join(wrong[:5])}). Pass the official instances_*2017.json."
        )


def make_ov_coco_train(data: Mapping, source: str = "<train json>") -> dict[str, dict]:
    """OV-COCO training jsons from ``instances_train2017.json``.

    Returns:
        ``{"train_base": 48-class base-only json, "train_all": 65-class oracle json}``.
    """
    validate_coco_dict(data, source, image_fields=_COCO_IMAGE_FIELDS)
    _check_coco_categories(data, source)
    return {
        "train_base": filter_categories(data, OV_COCO_BASE_IDS),
        "train_all": filter_categories(data, OV_COCO_IDS),
    }


def make_ov_coco_val(data: Mapping, source: str = "<val json>") -> dict:
    """OV-COCO evaluation json: val2017 restricted to the 65 OV-COCO categories."""
    validate_coco_dict(data, source, image_fields=_COCO_IMAGE_FIELDS)
    _check_coco_categories(data, source)
    return filter_categories(data, OV_COCO_IDS)


def _lvis_file_names(images: list[dict], source: str) -> list[dict]:
    out = []
    for i, img in enumerate(images):
        parts = str(img["coco_url"]).rstrip("/").split("/")
        if len(parts) < 2 or not parts[-2] or not parts[-1]:
            raise ValueError(
                f"{source}: images[{i}] (id={img['id']}) has coco_url={img['coco_url']!r}; "
                "expected '.../<train2017|val2017>/<file>.jpg'"
            )
        out.append({**img, "file_name": f"{parts[-2]}/{parts[-1]}"})
    return out


def _check_lvis_categories(data: Mapping, source: str) -> None:
    for i, c in enumerate(data["categories"]):
        if c.get("frequency") not in ("r", "c", "f"):
            raise ValueError(
                f"{source}: categories[{i}] (id={c['id']}) has frequency="
                f"{c.get('frequency')!r}; an LVIS v1 json has 'r', 'c' or 'f'"
            )


def make_ov_lvis_train(data: Mapping, source: str = "<lvis train json>") -> dict:
    """OV-LVIS training json: LVIS v1 train without the annotations of rare categories.

    All categories stay listed (rare ones with zero ``image_count``/``instance_count``);
    images get a ``file_name`` derived from ``coco_url``.
    """
    validate_coco_dict(data, source, image_fields=_LVIS_IMAGE_FIELDS)
    _check_lvis_categories(data, source)
    rare = {c["id"] for c in data["categories"] if c["frequency"] == "r"}
    out = {k: v for k, v in data.items() if k not in ("categories", "annotations", "images")}
    out["categories"] = [
        {**c, "image_count": 0, "instance_count": 0} if c["id"] in rare else c
        for c in sorted(data["categories"], key=lambda c: c["id"])
    ]
    out["annotations"] = [a for a in data["annotations"] if a["category_id"] not in rare]
    out["images"] = _lvis_file_names(data["images"], source)
    return out


def make_ov_lvis_val(data: Mapping, source: str = "<lvis val json>") -> dict:
    """OV-LVIS evaluation json: LVIS v1 val with ``file_name`` added; annotations unchanged."""
    validate_coco_dict(data, source, image_fields=_LVIS_IMAGE_FIELDS)
    _check_lvis_categories(data, source)
    out = dict(data)
    out["images"] = _lvis_file_names(data["images"], source)
    return out


def _require_files(paths: dict[str, Path], what: str) -> None:
    missing = [f"{k}: {p}" for k, p in paths.items() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing {what} input file(s): {'; '.join(missing)}. See datasets/README.md "
            "for where the official annotation files go."
        )


def prepare_ov_coco(
    coco_root: str | os.PathLike, out_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """Write the three OV-COCO jsons from ``<coco_root>/annotations/instances_*2017.json``.

    Args:
        coco_root: folder with ``annotations/instances_train2017.json`` and
            ``annotations/instances_val2017.json``.
        out_dir: output folder; default ``<coco_root>/annotations/ov_coco``.

    Returns:
        dict: ``{"train_base" | "train_all" | "val": written Path}``.
    """
    root = Path(coco_root)
    inputs = {
        "train": root / "annotations" / "instances_train2017.json",
        "val": root / "annotations" / "instances_val2017.json",
    }
    _require_files(inputs, "COCO 2017")
    out = Path(out_dir) if out_dir is not None else root / "annotations" / "ov_coco"
    written = {}
    train = make_ov_coco_train(read_coco_json(inputs["train"]), str(inputs["train"]))
    for key, data in train.items():
        written[key] = write_json(out / OV_COCO_FILES[key], data, newline=False)
    del train
    val = make_ov_coco_val(read_coco_json(inputs["val"]), str(inputs["val"]))
    written["val"] = write_json(out / OV_COCO_FILES["val"], val, newline=False)
    return written


def prepare_ov_lvis(
    lvis_root: str | os.PathLike, out_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """Write the OV-LVIS jsons from ``<lvis_root>/lvis_v1_{train,val}.json``.

    Args:
        lvis_root: folder with ``lvis_v1_train.json`` and ``lvis_v1_val.json``.
        out_dir: output folder; default ``<lvis_root>/ov_lvis``.

    Returns:
        dict: ``{"train_base" | "val": written Path}``.
    """
    root = Path(lvis_root)
    inputs = {"train": root / "lvis_v1_train.json", "val": root / "lvis_v1_val.json"}
    _require_files(inputs, "LVIS v1")
    out = Path(out_dir) if out_dir is not None else root / "ov_lvis"
    train = make_ov_lvis_train(read_coco_json(inputs["train"]), str(inputs["train"]))
    written = {"train_base": write_json(out / OV_LVIS_FILES["train_base"], train, newline=False)}
    del train
    val = make_ov_lvis_val(read_coco_json(inputs["val"]), str(inputs["val"]))
    written["val"] = write_json(out / OV_LVIS_FILES["val"], val, newline=False)
    return written
