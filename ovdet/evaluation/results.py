"""Detections -> COCO results: the one converter of ovdet (evaluators, ``ovdet detect``, the
demo, pseudo-labels all write through it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pycocotools.mask as mask_util
from detectron2.structures import Instances

__all__ = ["detections_to_coco_results", "encode_mask", "instances_to_coco_results"]


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of an (H, W) bool (or 0/1, or probability > 0.5) mask, ``counts`` as str."""
    mask = np.asarray(mask)
    mask = mask if mask.dtype == bool else mask > 0.5
    rle = mask_util.encode(np.asfortranarray(mask[:, :, None], dtype=np.uint8))[0]
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def detections_to_coco_results(
    image_id: int | str,
    boxes: np.ndarray,
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    category_ids: Sequence[int] | Mapping[int, int],
    masks: np.ndarray | None = None,
    *,
    category_names: Sequence[str] | Mapping[int, str] | None = None,
    file_name: str | None = None,
) -> list[dict]:
    """Detections of one image as COCO result dicts.

    Args:
        image_id: the image's id.
        boxes: (N, 4) XYXY in original image pixels.
        scores: (N,) scores.
        labels: (N,) class indices (rows of the vocabulary).
        category_ids: class index -> category id of the json (a list or a mapping).
        masks: optional (N, H, W) masks, written as RLE ``segmentation``.
        category_names: optional class index -> category name; adds ``category_name`` to
            each result (so that results can be joined to ground truth by name).
        file_name: optional image file name; adds ``file_name`` to each result.

    Returns:
        ``[{"image_id", "category_id", "bbox" (XYWH), "score"[, "segmentation"]
        [, "category_name"][, "file_name"]}]``; without the optional arguments exactly the
        COCO results format.

    Raises:
        ValueError: a label has no category id (naming the image and the label).
    """
    # XYXY -> XYWH in the boxes' own precision (as detectron2's BoxMode.convert does)
    xywh = np.array(boxes, copy=True).reshape(-1, 4)
    xywh[:, 2:] -= xywh[:, :2]
    out = []
    for k, (box, score, label) in enumerate(zip(xywh.tolist(), scores, labels)):
        label = int(label)
        try:
            category_id = category_ids[label]
        except (IndexError, KeyError) as e:
            raise ValueError(
                f"image {image_id}: predicted class index {label} has no category id "
                f"({len(category_ids)} classes); the model's vocabulary must be the one the "
                "category ids were given for"
            ) from e
        result = {
            "image_id": image_id,
            "category_id": int(category_id),
            "bbox": box,
            "score": float(score),
        }
        if masks is not None:
            result["segmentation"] = encode_mask(masks[k])
        if category_names is not None:
            result["category_name"] = str(category_names[label])
        if file_name is not None:
            result["file_name"] = str(file_name)
        out.append(result)
    return out


def instances_to_coco_results(
    instances: Instances,
    image_id: int,
    contiguous_to_dataset_id: Sequence[int] | Mapping[int, int],
    *,
    with_masks: bool = True,
) -> list[dict]:
    """Convert detectron2 predictions of one image to COCO result dicts.

    Args:
        instances: with ``pred_boxes`` (XYXY, original image pixels), ``scores``,
            ``pred_classes`` (indices into the dataset's ``thing_classes``) and optionally
            ``pred_masks`` (R, H, W).
        image_id: the image's id.
        contiguous_to_dataset_id: contiguous class index -> category id of the json.
        with_masks: encode ``pred_masks`` as RLE ``segmentation``.

    Returns:
        list of ``{"image_id", "category_id", "bbox" (XYWH), "score"[, "segmentation"]}``.
    """
    if len(instances) == 0:
        return []
    masks = None
    if with_masks and instances.has("pred_masks"):
        masks = instances.pred_masks.detach().cpu().numpy()
    return detections_to_coco_results(
        image_id,
        instances.pred_boxes.tensor.detach().cpu().numpy(),
        instances.scores.detach().cpu().tolist(),
        instances.pred_classes.detach().cpu().tolist(),
        contiguous_to_dataset_id,
        masks,
    )
