"""Reading detections in the formats detectors write (:func:`load_predictions`): a COCO
results list, a COCO dataset of detections, detectron2's ``instances_predictions.pth``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ovdet.data.datasets import json_error_message
from ovdet.utils.errors import InputError


class PredictionFormatError(InputError):
    """Detections that cannot be scored as given; the message names the file, the entries
    and what to do."""


@dataclass
class Predictions:
    """Detections as read from a file, not yet joined to a ground truth.

    Attributes:
        results: COCO result dicts as in the file.
        source: where they came from (a path), for messages.
        kind: ``"results"`` (a json list), ``"dataset"`` (a COCO dataset of detections) or
            ``"detectron2-pth"`` (``instances_predictions.pth``).
        image_names: a dataset file's image id -> ``file_name``.
        category_names: a dataset file's category id -> ``name``.
        contiguous_categories: ``category_id`` are contiguous class indices (detectron2's pth).
    """

    results: list
    source: str = "results"
    kind: str = "results"
    image_names: dict | None = None
    category_names: dict | None = None
    contiguous_categories: bool = False


PredictionsLike = Union[str, os.PathLike, Sequence[Mapping], Mapping, Predictions]


def load_predictions(predictions: PredictionsLike, source: str | None = None) -> Predictions:
    """Read detections from a path (json or detectron2 ``.pth``), a list or a dict.

    Raises:
        FileNotFoundError: missing file.
        PredictionFormatError: not json, not a list of results nor a COCO dataset of
            detections (e.g. a ground-truth file without scores), not a predictions ``.pth``.
    """
    if isinstance(predictions, Predictions):
        return predictions
    if isinstance(predictions, (str, os.PathLike)):
        path = os.fspath(predictions)
        source = source or path
        if not os.path.isfile(path):
            raise FileNotFoundError(f"detection results not found: {path}")
        if path.endswith((".pth", ".pt", ".pkl")):
            return _load_torch_predictions(path)
        try:
            with open(path, encoding="utf-8") as f:
                predictions = json.load(f)
        except json.JSONDecodeError as e:
            raise PredictionFormatError(json_error_message(path, e)) from e
        except UnicodeDecodeError as e:
            raise PredictionFormatError(
                f"{path} is not a UTF-8 json file ({e}); detections are a json list of results "
                "(or a detectron2 instances_predictions.pth)"
            ) from e
    source = source or "results"
    if isinstance(predictions, Mapping):
        return _from_dataset(predictions, source)
    if not isinstance(predictions, (list, tuple)):
        raise PredictionFormatError(
            f"{source}: detection results must be a json list of "
            '{"image_id", "category_id", "bbox", "score"} objects (or a COCO dataset of '
            f"detections), got a {type(predictions).__name__}"
        )
    return Predictions(list(predictions), source, "results")


def _from_dataset(data: Mapping, source: str) -> Predictions:
    """A COCO dataset whose annotations are detections (``ovdet detect``'s detections.json)."""
    if "annotations" not in data or not ("images" in data or "categories" in data):
        keys = sorted(map(str, data))[:8]
        raise PredictionFormatError(
            f"{source}: detection results must be a json list of "
            '{"image_id", "category_id", "bbox", "score"} objects, or a COCO dataset of '
            f"detections with 'images', 'categories' and 'annotations'; this json object has "
            f"the keys {keys}"
        )
    anns = data["annotations"]
    if not isinstance(anns, list):
        raise PredictionFormatError(f"{source}: 'annotations' must be a list of detections")
    if anns and all(isinstance(a, Mapping) and "score" not in a for a in anns):
        raise PredictionFormatError(
            f"{source}: its annotations have no 'score': this is a ground-truth file, not "
            "detections (swapped --gt and --pred?)"
        )
    image_names = category_names = None
    if isinstance(data.get("images"), list):
        image_names = {}
        for im in data["images"]:
            if isinstance(im, Mapping) and "id" in im and isinstance(im.get("file_name"), str):
                image_names[hashable(im["id"])] = im["file_name"]
        if not image_names:
            image_names = None  # images without file names: join by id
    if isinstance(data.get("categories"), list):
        category_names = {}
        for i, cat in enumerate(data["categories"]):
            if not (isinstance(cat, Mapping) and "id" in cat and isinstance(cat.get("name"), str)):
                raise PredictionFormatError(
                    f"{source}: categories[{i}] needs an 'id' and a text 'name' (the "
                    "detections' categories are matched to the ground truth by name)"
                )
            category_names[hashable(cat["id"])] = cat["name"]
    return Predictions(list(anns), source, "dataset", image_names, category_names)


def _load_torch_predictions(path: str) -> Predictions:
    import pickle

    import torch

    if path.endswith(".pkl"):
        raise PredictionFormatError(
            f"{path}: pickle files are not read (unsafe); give detections as a COCO results "
            "json (detectron2 writes coco_instances_results.json beside its .pth)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError) as e:
        raise PredictionFormatError(
            f"{path}: cannot be read safely as detectron2 predictions ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); a .pth holding detectron2 "
            "Instances (e.g. proposals) needs unsafe unpickling: use the "
            "coco_instances_results.json detectron2 writes beside it"
        ) from e
    if isinstance(obj, Mapping):
        what = "a model checkpoint" if ("model" in obj or _has_tensors(obj)) else "a dict"
        raise PredictionFormatError(
            f"{path} is {what}, not predictions: evaluate a detections json (or detectron2's "
            "instances_predictions.pth)"
        )
    if not isinstance(obj, list) or not all(
        isinstance(p, Mapping) and "image_id" in p for p in obj
    ):
        raise PredictionFormatError(
            f"{path}: expected detectron2's instances_predictions.pth, a list of "
            '{"image_id", "instances": [...]} dicts'
        )
    results = []
    for p in obj:
        instances = p.get("instances", [])
        if not isinstance(instances, list):
            raise PredictionFormatError(
                f"{path}: image {p['image_id']}: 'instances' is not a list of COCO results"
            )
        results.extend(dict(r) for r in instances)
    return Predictions(results, path, "detectron2-pth", contiguous_categories=True)


def _has_tensors(obj: Mapping) -> bool:
    import torch

    return any(isinstance(v, torch.Tensor) for v in obj.values())


def hashable(value: Any) -> Any:
    """A dict key for an id or name as written (``True`` must not be the key of ``1``)."""
    if isinstance(value, bool):
        return ("bool", value)
    return value if isinstance(value, (int, str, float)) or value is None else repr(value)
