"""Registration of COCO-format datasets with an open-vocabulary base/novel split.

:func:`register_ov_dataset` puts a COCO-format json + image folder into detectron2's
``DatasetCatalog`` / ``MetadataCatalog``. Registration is cheap: it only records paths and
names. The json is read the first time the dataset is loaded (``DatasetCatalog.get``) through
detectron2's :func:`~detectron2.data.datasets.load_coco_json`, or the first time a
category-derived metadata key is read before that (the categories are then read once).

Metadata keys set for every registered dataset:

* ``thing_classes`` (list[str]): category names of the json, in category-id order;
* ``thing_dataset_id_to_contiguous_id`` (dict[int, int]): json category id -> index into
  ``thing_classes``;
* ``base_classes`` / ``novel_classes`` (list[str]): the split, both in ``thing_classes`` order
  (classes in neither list are unused, e.g. the 15 COCO classes outside OV-COCO);
* ``json_file``, ``image_root``, ``evaluator_type``, plus ``extra_metadata``.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2.data.datasets import load_coco_json

__all__ = [
    "COCOFormatError",
    "json_error_message",
    "register_ov_dataset",
    "validate_coco_dict",
    "read_coco_json",
    "split_classes",
]

logger = logging.getLogger(__name__)

# Metadata keys that register_ov_dataset computes itself; extra_metadata may not set them.
_RESERVED_KEYS = ("json_file", "image_root", "evaluator_type", "base_classes", "novel_classes")
# Keys derived from the json's categories (resolved lazily unless declared).
_CATEGORY_KEYS = (
    "thing_classes",
    "thing_dataset_id_to_contiguous_id",
    "base_classes",
    "novel_classes",
)


class COCOFormatError(ValueError):
    """A COCO-format json lacks a required field or has one of the wrong type."""


def read_coco_json(path: str | os.PathLike) -> dict:
    """Read a json file, with errors naming the file.

    Raises:
        FileNotFoundError: the file does not exist.
        COCOFormatError: the file is not valid json or not a json object.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO-format json not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise COCOFormatError(json_error_message(path, e)) from e
    except UnicodeDecodeError as e:
        raise COCOFormatError(f"{path} is not UTF-8 text ({e}); save it as UTF-8 json") from e
    if not isinstance(data, dict):
        raise COCOFormatError(
            f"{path}: expected a json object with 'images', 'annotations' and 'categories', "
            f"got a json {type(data).__name__}"
        )
    return data


def json_error_message(path: str, error: json.JSONDecodeError) -> str:
    """``path is not valid json: <what> at line L, column C`` with the line's text and, after a
    trailing comma (which json forbids), a hint to remove it."""
    line = error.doc.splitlines()[error.lineno - 1] if error.doc else ""
    shown = line.strip()
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    before = error.doc[: error.pos].rstrip()
    hint = ""
    if before.endswith(",") and error.doc[error.pos : error.pos + 1] in ("}", "]"):
        comma_line = error.doc.count("\n", 0, len(before) - 1) + 1
        hint = f" (a trailing comma at line {comma_line}? json allows none before '}}' or ']')"
    return (
        f"{path} is not valid json: {error.msg} at line {error.lineno}, column {error.colno}"
        + (f": {shown!r}" if shown else "")
        + hint
    )


def validate_coco_dict(
    data: Mapping,
    source: str,
    *,
    image_fields: Sequence[str] = ("id", "file_name", "height", "width"),
    annotation_fields: Sequence[str] = ("image_id", "bbox", "category_id"),
) -> None:
    """Check that a COCO instances dict has the fields ovdet needs.

    Args:
        data: the parsed json.
        source: where ``data`` came from (a path), used in error messages.
        image_fields: fields every entry of ``images`` must have.
        annotation_fields: fields every entry of ``annotations`` must have.

    Raises:
        COCOFormatError: naming ``source``, the field and the index of the offending entry.
    """
    if not isinstance(data, Mapping):
        raise COCOFormatError(f"{source}: expected a json object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise COCOFormatError(
                f"{source}: missing required top-level field '{key}' (a COCO instances json "
                "has 'images', 'annotations' and 'categories'; use [] for none)"
            )
        if not isinstance(data[key], list):
            raise COCOFormatError(
                f"{source}: field '{key}' must be a list, got {type(data[key]).__name__}"
            )
    checks = (
        ("categories", ("id", "name")),
        ("images", tuple(image_fields)),
        ("annotations", tuple(annotation_fields)),
    )
    for key, fields in checks:
        for i, entry in enumerate(data[key]):
            if not isinstance(entry, Mapping):
                raise COCOFormatError(f"{source}: {key}[{i}] is not a json object")
            for f in fields:
                if f not in entry:
                    ident = f" (id={entry['id']})" if "id" in entry else ""
                    raise COCOFormatError(
                        f"{source}: {key}[{i}]{ident} has no field '{f}' (required: "
                        f"{', '.join(fields)})"
                    )
    for i, ann in enumerate(data["annotations"]):
        box = ann.get("bbox")
        if not (isinstance(box, (list, tuple)) and len(box) == 4):
            raise COCOFormatError(
                f"{source}: annotations[{i}] has 'bbox'={box!r}; expected [x, y, width, height]"
            )


def split_classes(
    thing_classes: Sequence[str],
    novel: Sequence[str] | None,
    base: Sequence[str] | None,
    source: str,
) -> tuple[list[str], list[str]]:
    """Resolve a base/novel split against the category names of a dataset.

    ``base`` defaults to every class not in ``novel``; ``novel`` defaults to every class not
    in ``base``; with both ``None`` all classes are base. Classes in neither list are unused.

    Returns:
        ``(base_classes, novel_classes)``, each in ``thing_classes`` order.

    Raises:
        ValueError: unknown names (naming them, ``source`` and near matches) or a class in
            both lists.
    """
    known = set(thing_classes)
    for label, names in (("novel", novel), ("base", base)):
        if names is None:
            continue
        unknown = [n for n in names if n not in known]
        if unknown:
            hints = {
                n: difflib.get_close_matches(n, list(thing_classes), n=3, cutoff=0.6)
                for n in unknown
            }
            hint = "; ".join(f"{n!r} (close: {h})" for n, h in hints.items() if h)
            raise ValueError(
                f"{label} class names not among the categories of {source}: {unknown}"
                + (f". Near matches: {hint}" if hint else "")
                + ". Names must equal the json's category names."
            )
    if novel is not None and base is not None:
        both = sorted(set(novel) & set(base))
        if both:
            raise ValueError(f"classes listed as both base and novel for {source}: {both}")
    novel_set = set(novel or ())
    if base is None:
        base_set = known - novel_set
    else:
        base_set = set(base)
        if novel is None:
            novel_set = known - base_set
    return (
        [c for c in thing_classes if c in base_set],
        [c for c in thing_classes if c in novel_set],
    )


@dataclass(frozen=True)
class _OVDatasetSpec:
    """Everything a registration was made from (compared to detect conflicting re-use)."""

    name: str
    json_file: str
    image_root: str
    novel: tuple[str, ...] | None
    base: tuple[str, ...] | None
    evaluator_type: str
    extra_metadata: dict = field(default_factory=dict)

    def differences(self, other: _OVDatasetSpec) -> list[str]:
        out = []
        for key in ("json_file", "image_root", "novel", "base", "evaluator_type"):
            a, b = getattr(self, key), getattr(other, key)
            if a != b:
                out.append(f"{key}: {_short(a)} != {_short(b)}")
        if self.extra_metadata != other.extra_metadata:
            keys = sorted(
                k
                for k in set(self.extra_metadata) | set(other.extra_metadata)
                if self.extra_metadata.get(k) != other.extra_metadata.get(k)
            )
            out.append(f"extra_metadata keys {keys}")
        return out


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OVMetadata(Metadata):
    """detectron2 :class:`Metadata` whose category-derived keys resolve lazily.

    Reading ``thing_classes``, ``thing_dataset_id_to_contiguous_id``, ``base_classes`` or
    ``novel_classes`` before the dataset was loaded reads the json's ``categories`` once.
    All other behaviour (consistency checks on re-assignment) is detectron2's.
    """

    def __getattr__(self, key: str) -> Any:
        state = self.__dict__
        resolver = state.get("_ov_resolver")
        if key in _CATEGORY_KEYS and resolver is not None and not state.get("_ov_busy"):
            state["_ov_busy"] = True
            try:
                resolver(self)
            finally:
                state["_ov_busy"] = False
            if key in state:
                return state[key]
        return super().__getattr__(key)


def _finish_categories(meta: OVMetadata, spec: _OVDatasetSpec) -> None:
    """Set base/novel classes from ``meta.thing_classes`` and mark the metadata resolved."""
    base, novel = split_classes(meta.thing_classes, spec.novel, spec.base, spec.json_file)
    meta.set(base_classes=base, novel_classes=novel)
    meta.__dict__["_ov_resolver"] = None


def _resolve_from_json(spec: _OVDatasetSpec, meta: OVMetadata) -> None:
    """Lazy resolver: read the json's categories and fill the category-derived keys."""
    if not os.path.isfile(spec.json_file):
        raise FileNotFoundError(_missing_json_message(spec))
    data = read_coco_json(spec.json_file)
    cats = data.get("categories")
    if not isinstance(cats, list):
        raise COCOFormatError(f"{spec.json_file}: missing required top-level field 'categories'")
    for i, c in enumerate(cats):
        if not isinstance(c, Mapping) or "id" not in c or "name" not in c:
            raise COCOFormatError(f"{spec.json_file}: categories[{i}] needs 'id' and 'name'")
    cats = sorted(cats, key=lambda c: c["id"])
    _set_categories(meta, spec, [c["name"] for c in cats], [c["id"] for c in cats])
    _finish_categories(meta, spec)


def _set_categories(
    meta: OVMetadata, spec: _OVDatasetSpec, names: list[str], ids: list[int]
) -> None:
    id_map = {cid: i for i, cid in enumerate(ids)}
    state = meta.__dict__
    for key, value in (("thing_classes", names), ("thing_dataset_id_to_contiguous_id", id_map)):
        if key in state and state[key] != value:
            raise ValueError(
                f"{spec.json_file}: its categories do not match the '{key}' declared for "
                f"dataset '{spec.name}' ({len(value)} in the json vs {len(state[key])} "
                "declared). Re-create the json with the datasets/prepare_*.py script or "
                "register the dataset without declaring categories."
            )
        state[key] = value


def _missing_json_message(spec: _OVDatasetSpec) -> str:
    return (
        f"annotation file of dataset '{spec.name}' not found: {spec.json_file}. "
        "See datasets/README.md (set $OVDET_DATASETS to the folder holding coco/ and lvis/ "
        "and run the datasets/prepare_*.py scripts)."
    )


def _diagnose(spec: _OVDatasetSpec, meta: OVMetadata, *, allow_empty: bool = False) -> None:
    """Read the json again and raise a precise error if its content explains a failure.

    The categories are compared with those declared at registration, then the whole file is
    checked with :func:`ovdet.data.check.check_coco_dict` (no image files): its first errors
    are raised as one :class:`COCOFormatError`. ``allow_empty``: a dataset without
    annotations (or images) is not an error.
    """
    from ovdet.data.check import check_coco_dict

    data = read_coco_json(spec.json_file)
    validate_coco_dict(data, spec.json_file)
    cats = [c for c in data["categories"] if isinstance(c, Mapping)]
    comparable = all(type(c.get("id")) is int for c in cats)  # else the check below says why
    names = [c.get("name") for c in sorted(cats, key=lambda c: c["id"])] if comparable else []
    declared = meta.__dict__.get("thing_classes")
    if comparable and declared is not None and declared != names:
        extra = sorted(set(map(str, names)) - set(declared))[:10]
        missing = sorted(set(declared) - set(map(str, names)))[:10]
        raise ValueError(
            f"{spec.json_file}: categories do not match those declared for dataset "
            f"'{spec.name}' ({len(names)} in the json, {len(declared)} declared; not declared: "
            f"{extra}, absent from json: {missing}). Re-create it with the prepare script."
        )
    report = check_coco_dict(data, spec.json_file)
    if allow_empty:
        report.issues = [
            i for i in report.issues if i.code not in ("annotations.empty", "images.empty")
        ]
    report.raise_if_errors()


def _check_loaded(spec: _OVDatasetSpec, dicts: list[dict]) -> int:
    """Cheap checks of what ``load_coco_json`` returned (it does not look at boxes): every
    annotation has a ``category_id`` and a ``bbox`` of 4 finite numbers, width and height not
    negative (zero-size boxes are dropped by the mapper). Returns the number of annotations.
    The whole file is checked by :func:`ovdet.data.check.check_registered_dataset`.

    Raises:
        COCOFormatError: naming the json, the image and the annotation.
    """
    num_anns = 0
    for record in dicts:
        for j, obj in enumerate(record["annotations"]):
            num_anns += 1
            where = (
                f"{spec.json_file}: annotation {j} of image id {record['image_id']} "
                f"({record.get('file_name')})"
            )
            for key in ("bbox", "category_id"):
                if key not in obj:
                    raise COCOFormatError(f"{where} has no field '{key}'")
            box = obj["bbox"]
            ok = (
                isinstance(box, (list, tuple))
                and len(box) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
            )
            if not ok or not all(math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0:
                raise COCOFormatError(
                    f"{where} has bbox={box!r}: boxes are [x, y, width, height], 4 finite "
                    "numbers with width, height >= 0. Run `ovdet data check "
                    f"{spec.json_file}` for every problem of the file."
                )
    return num_anns


# annotation fields kept beyond detectron2's (iscrowd, bbox, keypoints, category_id,
# segmentation); tokens_positive: grounding jsons (ovdet.data.grounding)
EXTRA_ANNOTATION_KEYS = ("mask_score", "tokens_positive")


def _load_dataset(spec: _OVDatasetSpec) -> list[dict]:
    """DatasetCatalog loader: load_coco_json + early, cheap validation with clear errors."""
    if not os.path.isfile(spec.json_file):
        raise FileNotFoundError(_missing_json_message(spec))
    meta = MetadataCatalog.get(spec.name)
    state = meta.__dict__
    state["_ov_busy"] = True  # load_coco_json sets thing_classes itself: no lazy read
    try:
        # mask_score: a mask's quality (SAM's predicted IoU, from ``ovdet sam-masks`` and
        # ``ovdet pseudo-label --sam``), read by OVDatasetMapper(min_mask_score=...)
        dicts = load_coco_json(
            spec.json_file,
            spec.image_root,
            spec.name,
            extra_annotation_keys=list(EXTRA_ANNOTATION_KEYS),
        )
    except (KeyError, ValueError, TypeError, AssertionError, IndexError) as e:
        state["_ov_busy"] = False
        _diagnose(spec, meta)
        raise COCOFormatError(
            f"{spec.json_file}: could not be loaded as dataset '{spec.name}': "
            f"{type(e).__name__}: {e}"
        ) from e
    finally:
        state["_ov_busy"] = False
    num_anns = _check_loaded(spec, dicts)
    if not dicts or num_anns == 0:
        # Possibly a missing top-level field (pycocotools tolerates those): check precisely.
        _diagnose(spec, meta, allow_empty=True)
        logger.warning(f"Dataset '{spec.name}' ({spec.json_file}) has no annotations.")
    _finish_categories(meta, spec)
    captions_json = spec.extra_metadata.get("captions_json")
    if captions_json:
        from ovdet.data.captions import attach_captions, load_captions

        attach_captions(dicts, load_captions(captions_json))
    return dicts


def register_ov_dataset(
    name: str,
    json_file: str | os.PathLike,
    image_root: str | os.PathLike,
    *,
    novel: Sequence[str] | None = None,
    base: Sequence[str] | None = None,
    evaluator_type: str = "ov_coco",
    extra_metadata: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> None:
    """Register a COCO-format dataset with an open-vocabulary split.

    Nothing is read here. ``DatasetCatalog.get(name)`` loads the json with detectron2's
    ``load_coco_json`` (dicts with contiguous ``category_id``) after checking the format;
    unknown ``novel``/``base`` names raise then, or when a category-derived metadata key is
    first read, or at once if ``extra_metadata`` declares ``thing_classes``.

    Args:
        name: dataset name, e.g. ``"ov_coco_val"``.
        json_file: COCO instances json.
        image_root: folder that the images' ``file_name`` are relative to.
        novel: names of the novel classes (must be category names of the json).
        base: names of the base classes; default: every class not in ``novel``.
        evaluator_type: ``"ov_coco"`` or ``"ov_lvis"`` (which evaluator fits).
        extra_metadata: more metadata keys. It may declare ``thing_classes`` (and
            ``thing_dataset_id_to_contiguous_id``) when they are known without reading the
            json; the json is then checked against them when loaded.
        replace: re-register ``name`` even if it exists with different arguments.

    Raises:
        ValueError: ``name`` is registered with different arguments (and not ``replace``),
            bad ``novel``/``base`` lists, or reserved keys in ``extra_metadata``.
    """
    extra = dict(extra_metadata or {})
    bad = [k for k in _RESERVED_KEYS if k in extra]
    if bad:
        raise ValueError(f"extra_metadata for '{name}' may not set {bad}: they are computed")
    for label, names in (("novel", novel), ("base", base)):
        if isinstance(names, str):
            raise ValueError(f"{label} for '{name}' must be a list of names, got the str {names!r}")
        if names is not None and len(set(names)) != len(names):
            dup = sorted({n for n in names if list(names).count(n) > 1})
            raise ValueError(f"{label} for '{name}' lists classes twice: {dup}")
    spec = _OVDatasetSpec(
        name=name,
        json_file=os.path.abspath(os.fspath(json_file)),
        image_root=os.path.abspath(os.fspath(image_root)),
        novel=tuple(novel) if novel is not None else None,
        base=tuple(base) if base is not None else None,
        evaluator_type=evaluator_type,
        extra_metadata=dict(extra),
    )
    if name in DatasetCatalog:
        old = MetadataCatalog.get(name).__dict__.get("_ov_spec")
        if old == spec:
            return
        if not replace:
            why = (
                "; ".join(old.differences(spec))
                if old is not None
                else "registered by other code, not by register_ov_dataset"
            )
            raise ValueError(
                f"dataset '{name}' is already registered with different arguments ({why}). "
                "Use another name, or pass replace=True to re-register it."
            )
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    previous = MetadataCatalog.pop(name, None)

    meta = OVMetadata(name=name)
    meta.__dict__["_ov_spec"] = spec
    meta.__dict__["_ov_resolver"] = functools.partial(_resolve_from_json, spec)
    if previous is not None:  # metadata set before registration (e.g. colors): keep it
        meta.set(**{k: v for k, v in previous.__dict__.items() if k != "name"})
    declared = extra.pop("thing_classes", None)
    declared_map = extra.pop("thing_dataset_id_to_contiguous_id", None)
    meta.set(
        json_file=spec.json_file,
        image_root=spec.image_root,
        evaluator_type=evaluator_type,
        **extra,
    )
    if declared is not None:
        meta.__dict__["thing_classes"] = list(declared)
        if declared_map is not None:
            meta.__dict__["thing_dataset_id_to_contiguous_id"] = dict(declared_map)
        base_classes, novel_classes = split_classes(
            list(declared), spec.novel, spec.base, f"dataset '{name}' ({spec.json_file})"
        )
        meta.__dict__["base_classes"] = base_classes
        meta.__dict__["novel_classes"] = novel_classes
        if declared_map is not None:
            meta.__dict__["_ov_resolver"] = None
    MetadataCatalog[name] = meta
    DatasetCatalog.register(name, functools.partial(_load_dataset, spec))
