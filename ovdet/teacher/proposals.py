"""Class-agnostic proposals for the region teacher (ViLD-image): files or an RPN.

ViLD distils CLIP embeddings of the top-M proposals per image of an RPN trained on base
boxes, computed offline. This module reads such proposals from files, or runs a detectron2
model's proposal generator, and keeps the top M per image. Every function returns, per image
id, a dict ``{"boxes": (N, 4) float32 XYXY, "scores": (N,) float32}`` in ORIGINAL image pixels,
sorted by decreasing score.

Supported files (:func:`load_proposals`):

- COCO results JSON: a list of ``{"image_id", "bbox": [x, y, w, h], "score"}`` (other fields,
  e.g. ``category_id``, are ignored: the boxes of all classes are pooled, class-agnostic);
- a JSON object ``{image_id: [[x0, y0, x1, y1, score], ...]}`` (XYXY; JSON keys are strings,
  :func:`lookup_proposals` matches them to int image ids);
- a detectron2 proposal file (``.pkl``, or ``.pt``/``.pth`` read with ``weights_only=True``):
  a dict with ``ids``, ``boxes`` (per image (N, 4)), ``objectness_logits`` and optional
  ``bbox_mode`` (as written by detectron2's proposal dumping), or ``{image_id: (N, 5)}``.
  Objectness logits become scores through a sigmoid (same order). ``.pkl`` files are
  unpickled: load only files you trust.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from detectron2.data import detection_utils as d2_utils
from detectron2.data import transforms as T
from detectron2.structures import BoxMode
from torchvision.ops import nms

from ovdet.data.region_store import ImageId, normalize_image_id

__all__ = [
    "ModelProposals",
    "ProposalSource",
    "as_proposals",
    "load_proposals",
    "lookup_proposals",
    "proposals_from_model",
    "select_proposals",
]

logger = logging.getLogger(__name__)

Proposals = dict[str, torch.Tensor]
# what extract_regions accepts: {image_id: proposals} or f(dataset_dict, rgb_image) -> proposals
ProposalSource = Union[Mapping[Any, Any], Callable[[Mapping[str, Any], np.ndarray], Any]]


def select_proposals(
    boxes: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    *,
    top_m: int | None = None,
    nms_thresh: float | None = None,
    min_size: float = 0.0,
    image_size: tuple[int, int] | None = None,
    nms_legacy_plus_one: bool = False,
) -> Proposals:
    """Filter, de-duplicate and rank the proposals of one image.

    Order: clip to the image (when ``image_size`` is given), drop boxes whose width or height is
    below ``min_size`` (and empty boxes), greedy NMS at ``nms_thresh`` in decreasing score
    order (when given; a box is dropped when its IoU with a kept, better-scored box is above
    the threshold), keep the ``top_m`` best by score.

    RKD's selection (hanoonaR/object-centric-ovd ``tools/get_rkd_clip_feat.py``:
    ``class_agnostic_nms(..., iou=0.5)`` on the pooled candidates, then the top 5 by score) is
    ``nms_thresh=0.5, top_m=5, nms_legacy_plus_one=True``: its NMS (MAVL's ``utils/nms.py``)
    measures boxes as inclusive pixel ranges, width ``x1 - x0 + 1``. It never clips; here boxes
    are clipped to the image first, which changes nothing for boxes inside the image.

    Args:
        boxes: (N, 4) XYXY.
        scores: (N,) higher is better.
        top_m: how many to keep (None: all).
        nms_thresh: IoU threshold of class-agnostic NMS (None: no NMS).
        min_size: minimum width and height in pixels.
        image_size: (H, W) to clip to.
        nms_legacy_plus_one: NMS IoU with the "+1" pixel convention (widths ``x1 - x0 + 1``)
            instead of continuous coordinates.

    Returns:
        ``{"boxes": (M, 4) float32, "scores": (M,) float32}`` sorted by decreasing score.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4).clone()
    scores = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"select_proposals: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if top_m is not None and top_m < 0:
        raise ValueError(f"select_proposals: top_m must be >= 0, got {top_m}")
    if image_size is not None:
        height, width = image_size
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    keep = (widths > 0) & (heights > 0) & (widths >= min_size) & (heights >= min_size)
    keep &= torch.isfinite(scores) & torch.isfinite(boxes).all(dim=1)
    boxes, scores = boxes[keep], scores[keep]
    if nms_thresh is not None and boxes.shape[0]:
        # the "+1" convention's IoU is the continuous IoU of the boxes grown by 1 at x1, y1
        nms_boxes = boxes + boxes.new_tensor([0, 0, 1, 1]) if nms_legacy_plus_one else boxes
        order = nms(nms_boxes, scores, float(nms_thresh))  # sorted by decreasing score
    else:
        order = torch.argsort(scores, descending=True, stable=True)
    if top_m is not None:
        order = order[:top_m]
    return {"boxes": boxes[order].contiguous(), "scores": scores[order].contiguous()}


def lookup_proposals(
    proposals: Mapping[Any, Any], image_id: ImageId, source: str = "proposals"
) -> Any:
    """The entry of ``image_id`` in a proposals mapping; int ids also match their string form.

    Raises:
        KeyError: naming the id and the source when there is no entry.
    """
    if image_id in proposals:
        return proposals[image_id]
    if isinstance(image_id, int) and str(image_id) in proposals:
        return proposals[str(image_id)]
    raise KeyError(f"no proposals for image id {image_id!r} in {source}")


def as_proposals(value: Any, where: str) -> Proposals:
    """A proposals value (dict with boxes/scores, or an (N, 4)/(N, 5) array) -> dict of tensors."""
    if isinstance(value, Mapping):
        if "boxes" not in value:
            raise ValueError(f"{where}: proposals dict has no 'boxes' (keys: {sorted(value)})")
        boxes = torch.as_tensor(np.asarray(value["boxes"], dtype=np.float32)).reshape(-1, 4)
        scores = value.get("scores")
        if scores is None:
            # no scores: keep the given order
            scores = -torch.arange(boxes.shape[0], dtype=torch.float32)
        scores = torch.as_tensor(np.asarray(scores, dtype=np.float32)).reshape(-1)
    else:
        array = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if array.numel() == 0:
            array = array.reshape(0, 5)
        if array.ndim != 2 or array.shape[1] not in (4, 5):
            raise ValueError(
                f"{where}: proposals must be (N, 4) XYXY or (N, 5) XYXY+score, got shape "
                f"{tuple(array.shape)}"
            )
        boxes = array[:, :4]
        if array.shape[1] == 5:
            scores = array[:, 4]
        else:
            scores = -torch.arange(boxes.shape[0], dtype=torch.float32)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"{where}: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    return {"boxes": boxes, "scores": scores}


def _number(value: Any, path: Path, index: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: entry {index}: field {field!r} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{path}: entry {index}: field {field!r} is not finite ({value!r})")
    return float(value)


def _from_coco_results(path: Path, records: list) -> dict[ImageId, tuple[list, list]]:
    grouped: dict[ImageId, tuple[list, list]] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(
                f"{path}: entry {index} must be an object with image_id, bbox, score; got "
                f"{type(record).__name__}"
            )
        for field in ("image_id", "bbox", "score"):
            if field not in record:
                raise ValueError(f"{path}: entry {index}: field {field!r} is missing")
        try:
            image_id = normalize_image_id(record["image_id"])
        except TypeError as e:
            raise ValueError(f"{path}: entry {index}: field 'image_id': {e}") from e
        bbox = record["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(
                f"{path}: entry {index}: field 'bbox' must be [x, y, w, h] (4 numbers), got "
                f"{bbox!r}"
            )
        x, y, w, h = (_number(v, path, index, "bbox") for v in bbox)
        if w < 0 or h < 0:
            raise ValueError(
                f"{path}: entry {index}: field 'bbox' has negative width or height {bbox!r} "
                "(COCO results use [x, y, w, h])"
            )
        score = _number(record["score"], path, index, "score")
        boxes, scores = grouped.setdefault(image_id, ([], []))
        boxes.append([x, y, x + w, y + h])
        scores.append(score)
    return grouped


def _from_xyxy_mapping(path: Path, mapping: Mapping) -> dict[ImageId, tuple[list, list]]:
    grouped: dict[ImageId, tuple[list, list]] = {}
    for key, rows in mapping.items():
        try:
            image_id = normalize_image_id(key)
        except TypeError as e:
            raise ValueError(f"{path}: entry {key!r}: {e}") from e
        try:
            array = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"{path}: entry {key!r}: proposals must be a list of [x0, y0, x1, y1, score] "
                f"rows of numbers ({e})"
            ) from e
        if array.size == 0:
            array = array.reshape(0, 5)
        if array.ndim != 2 or array.shape[1] not in (4, 5):
            raise ValueError(
                f"{path}: entry {key!r}: proposals must be rows of [x0, y0, x1, y1, score] "
                f"(XYXY), got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            row = int(np.nonzero(~np.isfinite(array).all(axis=1))[0][0])
            raise ValueError(f"{path}: entry {key!r}, row {row}: non-finite value {array[row]}")
        bad = (array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])
        if bad.any():
            row = int(np.nonzero(bad)[0][0])
            raise ValueError(
                f"{path}: entry {key!r}, row {row}: box {array[row, :4].tolist()} has x1 < x0 "
                "or y1 < y0; rows must be XYXY"
            )
        scores = array[:, 4] if array.shape[1] == 5 else -np.arange(len(array), dtype=np.float64)
        grouped[image_id] = (array[:, :4].tolist(), scores.tolist())
    return grouped


def _from_detectron2(path: Path, data: Mapping) -> dict[ImageId, tuple[list, list]]:
    for field in ("ids", "boxes"):
        if field not in data:
            raise ValueError(f"{path}: detectron2 proposal file has no field {field!r}")
    ids, boxes_list = data["ids"], data["boxes"]
    logits_list = data.get("objectness_logits")
    if len(ids) != len(boxes_list) or (logits_list is not None and len(logits_list) != len(ids)):
        raise ValueError(
            f"{path}: fields 'ids', 'boxes', 'objectness_logits' must have one entry per image "
            f"(got {len(ids)}, {len(boxes_list)}, "
            f"{None if logits_list is None else len(logits_list)})"
        )
    mode = BoxMode(int(data.get("bbox_mode", BoxMode.XYXY_ABS)))
    grouped: dict[ImageId, tuple[list, list]] = {}
    for index, (key, boxes) in enumerate(zip(ids, boxes_list)):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if mode != BoxMode.XYXY_ABS:
            boxes = BoxMode.convert(boxes, mode, BoxMode.XYXY_ABS)
        if logits_list is None:
            scores = -np.arange(len(boxes), dtype=np.float64)
        else:
            logits = np.asarray(logits_list[index], dtype=np.float64).reshape(-1)
            if len(logits) != len(boxes):
                raise ValueError(
                    f"{path}: index {index} (image id {key!r}): {len(boxes)} boxes but "
                    f"{len(logits)} objectness_logits"
                )
            scores = 1.0 / (1.0 + np.exp(-logits))
        grouped[normalize_image_id(key)] = (boxes.tolist(), scores.tolist())
    return grouped


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
    if suffix == ".pkl":
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    if suffix in (".pt", ".pth"):
        return torch.load(path, map_location="cpu", weights_only=True)
    raise ValueError(
        f"{path}: unknown proposals file type {suffix!r}; use a COCO results .json, a JSON "
        "{image_id: [[x0, y0, x1, y1, score], ...]}, or a detectron2 proposal .pkl/.pt"
    )


def load_proposals(
    path: str | os.PathLike,
    *,
    top_m: int | None = None,
    nms_thresh: float | None = None,
    min_size: float = 0.0,
    nms_legacy_plus_one: bool = False,
) -> dict[ImageId, Proposals]:
    """Read a proposals file (see the module docstring for the formats).

    Args:
        path: the file.
        top_m: keep the ``top_m`` best per image (None: all).
        nms_thresh: optional class-agnostic NMS IoU threshold, applied before top-M.
        min_size: drop boxes narrower or lower than this (pixels).
        nms_legacy_plus_one: see :func:`select_proposals`.

    Returns:
        ``{image_id: {"boxes": (M, 4) float32 XYXY, "scores": (M,) float32}}``, sorted by
        decreasing score. Ids are as in the file (JSON object keys are strings; use
        :func:`lookup_proposals` to match int ids).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"proposals file not found: {path}")
    data = _read_file(path)
    if isinstance(data, list):
        grouped = _from_coco_results(path, data)
    elif isinstance(data, Mapping) and "ids" in data and "boxes" in data:
        grouped = _from_detectron2(path, data)
    elif isinstance(data, Mapping):
        grouped = _from_xyxy_mapping(path, data)
    else:
        raise ValueError(
            f"{path}: expected a list (COCO results) or an object/dict of proposals, got "
            f"{type(data).__name__}"
        )
    out = {}
    for image_id, (boxes, scores) in grouped.items():
        out[image_id] = select_proposals(
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(scores, dtype=torch.float32),
            top_m=top_m,
            nms_thresh=nms_thresh,
            min_size=min_size,
            nms_legacy_plus_one=nms_legacy_plus_one,
        )
    logger.info("read proposals of %d images from %s", len(out), path)
    return out


class ModelProposals:
    """Class-agnostic proposals of a detectron2 ``GeneralizedRCNN`` (or subclass, e.g. OVRCNN).

    Runs ``model.preprocess_image`` -> ``model.backbone`` -> ``model.proposal_generator`` in
    eval mode under ``no_grad`` and rescales the proposals to the original image size.
    Scores are ``sigmoid(objectness_logits)``. The model is put in eval mode.

    Args:
        model: a built detectron2 ``GeneralizedRCNN`` with weights loaded.
        augmentations: test-time augmentations of the model's data pipeline (e.g.
            ``[T.ResizeShortestEdge(800, 1333)]``); None or [] feeds the image as read.
        top_m: proposals kept per image (after ``nms_thresh`` / ``min_size``; None: all the
            proposal generator returns).
        nms_thresh: optional extra NMS (the RPN already applies its own).
        min_size: drop proposals smaller than this, in original image pixels.
        nms_legacy_plus_one: see :func:`select_proposals`.

    Call it with ``(dataset_dict, image)`` where ``image`` is the (H, W, 3) uint8 RGB image;
    :meth:`batch` takes several images at once.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        augmentations: Sequence[T.Augmentation] | None = None,
        top_m: int | None = None,
        nms_thresh: float | None = None,
        min_size: float = 0.0,
        nms_legacy_plus_one: bool = False,
    ) -> None:
        for attr in ("preprocess_image", "backbone", "proposal_generator"):
            if not hasattr(model, attr):
                raise TypeError(
                    f"ModelProposals: model {type(model).__name__} has no {attr!r}; pass a "
                    "detectron2 GeneralizedRCNN (or subclass)."
                )
        if model.proposal_generator is None:
            raise ValueError(
                "ModelProposals: model.proposal_generator is None (precomputed-proposal "
                "config); build the model with an RPN."
            )
        self.model = model.eval()
        self.input_format = getattr(model, "input_format", None) or "BGR"
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(
                f"ModelProposals: model input_format {self.input_format!r} is not supported "
                "(RGB or BGR)."
            )
        self.augmentations = T.AugmentationList(list(augmentations or []))
        self.top_m = top_m
        self.nms_thresh = nms_thresh
        self.min_size = float(min_size)
        self.nms_legacy_plus_one = bool(nms_legacy_plus_one)

    def _model_input(self, image: np.ndarray) -> dict[str, Any]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"ModelProposals: image must be (H, W, 3) uint8 RGB, got {image.dtype} "
                f"{image.shape}"
            )
        height, width = image.shape[:2]
        array = image if self.input_format == "RGB" else image[:, :, ::-1]
        aug_input = T.AugInput(np.ascontiguousarray(array))
        self.augmentations(aug_input)
        tensor = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        return {"image": tensor, "height": height, "width": width}

    def batch(self, images: Sequence[np.ndarray]) -> list[Proposals]:
        """Proposals of several (H, W, 3) uint8 RGB images, in original pixels.

        The images go through the model as one batch, padded to a common size as in
        detectron2's own inference, so a proposal set can differ slightly from the one the
        image gets alone.
        """
        if not images:
            return []
        inputs = [self._model_input(image) for image in images]
        with torch.no_grad():
            batched = self.model.preprocess_image(inputs)
            features = self.model.backbone(batched.tensor)
            instances, _ = self.model.proposal_generator(batched, features, None)
        out = []
        for inst, inp in zip(instances, inputs):
            in_h, in_w = inst.image_size
            scale = torch.tensor(
                [inp["width"] / in_w, inp["height"] / in_h] * 2, dtype=torch.float32
            )
            boxes = inst.proposal_boxes.tensor.detach().float().cpu() * scale
            scores = inst.objectness_logits.detach().float().cpu().sigmoid()
            out.append(
                select_proposals(
                    boxes,
                    scores,
                    top_m=self.top_m,
                    nms_thresh=self.nms_thresh,
                    min_size=self.min_size,
                    image_size=(inp["height"], inp["width"]),
                    nms_legacy_plus_one=self.nms_legacy_plus_one,
                )
            )
        return out

    def __call__(self, dataset_dict: Mapping[str, Any], image: np.ndarray) -> Proposals:
        """Proposals of one image (``dataset_dict`` is unused; the signature is that of
        :func:`ovdet.teacher.extract.extract_regions`' proposal callables)."""
        return self.batch([image])[0]


def proposals_from_model(
    model: torch.nn.Module,
    dataset_dicts: Iterable[Mapping[str, Any]],
    top_m: int | None,
    *,
    augmentations: Sequence[T.Augmentation] | None = None,
    nms_thresh: float | None = None,
    min_size: float = 0.0,
    batch_size: int = 1,
    nms_legacy_plus_one: bool = False,
) -> dict[ImageId, Proposals]:
    """Run a detectron2 model's proposal generator on dataset images.

    Args:
        model: a detectron2 ``GeneralizedRCNN`` (OVRCNN included) with its RPN weights.
        dataset_dicts: detectron2 dataset dicts with ``file_name`` and ``image_id``.
        top_m: proposals kept per image.
        augmentations: the model's test-time augmentations (see :class:`ModelProposals`).
        nms_thresh: optional extra NMS threshold.
        min_size: minimum box size in original pixels.
        batch_size: images per forward pass.
        nms_legacy_plus_one: see :func:`select_proposals`.

    Returns:
        ``{image_id: {"boxes": (M, 4) float32 XYXY original pixels, "scores": (M,)}}``.
    """
    if batch_size < 1:
        raise ValueError(f"proposals_from_model: batch_size must be >= 1, got {batch_size}")
    runner = ModelProposals(
        model,
        augmentations=augmentations,
        top_m=top_m,
        nms_thresh=nms_thresh,
        min_size=min_size,
        nms_legacy_plus_one=nms_legacy_plus_one,
    )
    out: dict[ImageId, Proposals] = {}
    ids: list[ImageId] = []
    images: list[np.ndarray] = []

    def run() -> None:
        for image_id, proposals in zip(ids, runner.batch(images)):
            out[image_id] = proposals
        ids.clear()
        images.clear()

    for index, record in enumerate(dataset_dicts):
        for field in ("file_name", "image_id"):
            if field not in record:
                raise ValueError(f"proposals_from_model: dataset dict {index} has no {field!r}")
        ids.append(normalize_image_id(record["image_id"]))
        images.append(d2_utils.read_image(record["file_name"], format="RGB"))
        if len(images) == batch_size:
            run()
    run()
    return out
