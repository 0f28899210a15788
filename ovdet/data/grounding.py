"""Grounding annotations (MDETR / GLIP "modulated detection" jsons) as detectron2 datasets.

A grounding json is a COCO instances json whose every ``images`` entry carries ``caption``
(the text) and whose every annotation carries ``tokens_positive``: a list of ``[start, end)``
character spans of that caption naming the object (several spans for a phrase split in the
text). One physical image may have several entries, one per caption (MDETR's layout; the
OV-Shapes generator writes ``grounding_train.json`` / ``grounding_val.json`` this way).

:func:`register_grounding_dataset` registers one like :func:`~ovdet.data.register_ov_dataset`
does (same metadata and checks); its dataset dicts also hold ``caption`` (str) and, per
annotation, ``tokens_positive``. ``OVDatasetMapper(grounding=True)`` turns them into the model
input of caption training (``caption``, ``tokens_positive`` per phrase and
``instances.gt_phrases``; see ``ovdet.methods.grounding``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from detectron2.data import DatasetCatalog, MetadataCatalog

from ovdet.data.datasets import (
    COCOFormatError,
    _load_dataset,
    read_coco_json,
    register_ov_dataset,
    validate_coco_dict,
)

__all__ = [
    "GroundingFormatError",
    "check_spans",
    "register_grounding_dataset",
    "validate_grounding_dict",
]


class GroundingFormatError(COCOFormatError):
    """A grounding json lacks a caption or ``tokens_positive``, or a span is outside its caption."""


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def check_spans(tokens_positive: Any, caption: str, where: str) -> list[list[int]]:
    """``tokens_positive`` as a list of ``[start, end]`` pairs inside ``caption``.

    Raises:
        GroundingFormatError: ``where`` (the file and entry) and what is wrong.
    """
    if not isinstance(tokens_positive, (list, tuple)) or not tokens_positive:
        raise GroundingFormatError(
            f"{where}: 'tokens_positive' must be a non-empty list of [start, end] character "
            f"spans of the caption, got {tokens_positive!r}"
        )
    spans = []
    for span in tokens_positive:
        ok = (
            isinstance(span, (list, tuple))
            and len(span) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
        )
        if not ok:
            raise GroundingFormatError(
                f"{where}: 'tokens_positive' entry {span!r} is not a [start, end] pair of "
                "character offsets"
            )
        start, end = span
        if not 0 <= start < end <= len(caption):
            raise GroundingFormatError(
                f"{where}: 'tokens_positive' span [{start}, {end}] is outside the caption "
                f"(or empty): the caption has {len(caption)} characters, {_short(caption)}"
            )
        spans.append([start, end])
    return spans


def validate_grounding_dict(data: Mapping, source: str) -> dict[int, str]:
    """Check a grounding json: COCO fields, a caption per image, spans per annotation.

    Crowd annotations (``iscrowd: 1``) may omit ``tokens_positive`` (training drops them or
    makes them ignore regions).

    Returns:
        image id -> caption.

    Raises:
        GroundingFormatError / COCOFormatError: naming ``source``, the entry and the field.
    """
    validate_coco_dict(data, source)
    captions: dict[int, str] = {}
    for i, image in enumerate(data["images"]):
        where = f"{source}: images[{i}] (id={image['id']})"
        if "caption" not in image:
            raise GroundingFormatError(
                f"{where} has no field 'caption': a grounding json gives every image entry "
                "the caption its annotations' tokens_positive point into"
            )
        caption = image["caption"]
        if not isinstance(caption, str) or not caption.strip():
            raise GroundingFormatError(
                f"{where}: 'caption' must be a non-empty string, got {caption!r}"
            )
        captions[image["id"]] = caption
    for i, ann in enumerate(data["annotations"]):
        ident = f" (id={ann['id']})" if "id" in ann else ""
        where = f"{source}: annotations[{i}]{ident}"
        if ann["image_id"] not in captions:
            raise GroundingFormatError(f"{where}: image_id {ann['image_id']!r} is not an image")
        if "tokens_positive" not in ann:
            if ann.get("iscrowd", 0):
                continue
            raise GroundingFormatError(
                f"{where} has no field 'tokens_positive': every annotation of a grounding json "
                "lists the [start, end] character spans of its image's caption that name it"
            )
        check_spans(ann["tokens_positive"], captions[ann["image_id"]], where)
    return captions


def _load_grounding(name: str, drop_novel: bool) -> list[dict]:
    """DatasetCatalog loader: validate the grounding fields, load as COCO, attach captions."""
    meta = MetadataCatalog.get(name)
    spec = meta.__dict__["_ov_spec"]
    if not os.path.isfile(spec.json_file):
        raise FileNotFoundError(f"grounding json of dataset '{name}' not found: {spec.json_file}")
    captions = validate_grounding_dict(read_coco_json(spec.json_file), spec.json_file)
    dicts = _load_dataset(spec)  # keeps tokens_positive (EXTRA_ANNOTATION_KEYS)
    novel: set[int] = set()
    if drop_novel:
        names = set(meta.novel_classes)
        novel = {i for i, n in enumerate(meta.thing_classes) if n in names}
    for record in dicts:
        record["caption"] = captions[record["image_id"]]
        if novel:
            record["annotations"] = [
                a for a in record["annotations"] if a["category_id"] not in novel
            ]
    return dicts


def register_grounding_dataset(
    name: str,
    json_file: str | os.PathLike,
    image_root: str | os.PathLike,
    *,
    novel: Sequence[str] | None = None,
    base: Sequence[str] | None = None,
    drop_novel: bool = False,
    evaluator_type: str = "ov_coco",
    extra_metadata: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> None:
    """Register a grounding json (see the module docstring) as a detectron2 dataset.

    Arguments as :func:`~ovdet.data.register_ov_dataset`; nothing is read here. Loading
    (``DatasetCatalog.get(name)``) first checks the grounding fields
    (:func:`validate_grounding_dict`: one error naming the file, the entry and the field),
    then loads the json as COCO; every dict gets ``caption`` and every annotation keeps its
    ``tokens_positive``.

    Args:
        drop_novel: leave out the annotations of the novel classes (open-vocabulary training:
            their objects stay named in the captions but get no box).
    """
    extra = {**dict(extra_metadata or {}), "grounding": True, "grounding_drop_novel": drop_novel}
    register_ov_dataset(
        name,
        json_file,
        image_root,
        novel=novel,
        base=base,
        evaluator_type=evaluator_type,
        extra_metadata=extra,
        replace=replace,
    )
    DatasetCatalog.remove(name)
    DatasetCatalog.register(name, functools.partial(_load_grounding, name, bool(drop_novel)))
