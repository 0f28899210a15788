"""Box-prompted mask quality of a SAM: the IoU of its mask for each ground-truth box with the
object's ground-truth mask, averaged over base and over novel objects separately."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ovdet.modeling.sam.box_prompt import BoxPromptedSAM
from ovdet.modeling.sam.pretrain.data import MaskedImage, decode_segmentation

__all__ = ["evaluate_box_miou", "mask_iou", "mean_iou_by_split"]


def mask_iou(pred: Any, gt: Any) -> np.ndarray:
    """IoU of paired binary masks: (N, H, W) and (N, H, W) (bool or 0/1) -> (N,) float64.

    Two empty masks agree perfectly (IoU 1); an empty mask against a non-empty one scores 0.
    """
    pred = torch.as_tensor(np.asarray(pred)).bool().flatten(1)
    gt = torch.as_tensor(np.asarray(gt)).bool().flatten(1)
    if pred.shape != gt.shape:
        raise ValueError(f"mask_iou: masks of shapes {tuple(pred.shape)} and {tuple(gt.shape)}")
    inter = (pred & gt).sum(1).double()
    union = (pred | gt).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).numpy()


def mean_iou_by_split(
    ious: Sequence[float], classes: Sequence[str], novel: Sequence[str]
) -> dict[str, Any]:
    """``{"miou_all", "miou_base", "miou_novel", "num_all", "num_base", "num_novel"}``: the mean
    IoU over all objects and over those of base / novel classes (None where there are none)."""
    ious = np.asarray(ious, dtype=np.float64)
    is_novel = np.array([c in set(novel) for c in classes], dtype=bool)
    out: dict[str, Any] = {}
    for key, sel in (("all", np.ones_like(is_novel)), ("base", ~is_novel), ("novel", is_novel)):
        n = int(sel.sum())
        out[f"miou_{key}"] = round(float(ious[sel].mean()), 4) if n else None
        out[f"num_{key}"] = n
    return out


def evaluate_box_miou(
    sam: torch.nn.Module,
    images: Sequence[MaskedImage],
    novel: Sequence[str],
    *,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """mIoU of ``sam``'s mask for every ground-truth box (as given, no jitter) against the
    object's mask, at the image's resolution, as :class:`BoxPromptedSAM` predicts it
    (``multimask_output=False``).

    Returns:
        :func:`mean_iou_by_split`'s dict. The SAM is left in eval mode.
    """
    boxed = BoxPromptedSAM(sam, device=device, fp16=False)
    ious: list[float] = []
    classes: list[str] = []
    for rec in images:
        pred = boxed.predict(rec.file, rec.boxes).masks
        gt = np.stack([decode_segmentation(s, rec.height, rec.width) for s in rec.segmentations])
        ious.extend(mask_iou(pred, gt).tolist())
        classes.extend(rec.classes)
    return mean_iou_by_split(ious, classes, novel)
