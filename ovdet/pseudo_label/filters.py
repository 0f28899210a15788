"""Which of a teacher's detections become pseudo-boxes: pure functions on arrays.

:func:`filter_detections` applies, in this order:

1. the score threshold of each box's class: its ``class_thresh`` entry when it has one, else
   the global ``score_thresh`` (a box is kept when ``score >= threshold``);
2. the allowed classes (``allowed``: e.g. the classes an image's caption mentions);
3. per-class NMS at IoU ``nms`` (None: off; the teacher's own NMS already ran);
4. class-agnostic NMS at IoU ``agnostic_nms`` (None: off): overlapping boxes of different
   classes keep only the highest scoring one;
5. the ``max_per_image`` highest scoring boxes (None: all).

The kept boxes come back by descending score (ties: the teacher's order); scores are never
changed. Thresholds are checked by :func:`check_filter_settings` and
:func:`parse_class_thresh`, whose errors name the option and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ovdet.utils.errors import InputError

__all__ = [
    "FilterSettings",
    "check_filter_settings",
    "filter_detections",
    "parse_class_thresh",
]


@dataclass(frozen=True)
class FilterSettings:
    """The filtering of a run (recorded in its manifest: :meth:`to_json`).

    Attributes:
        score_thresh: global minimum score, in [0, 1].
        class_thresh: class index -> its own minimum score (replaces the global one).
        nms: per-class NMS IoU in (0, 1], or None (off).
        agnostic_nms: class-agnostic NMS IoU in (0, 1], or None (off).
        max_per_image: most boxes per image (>= 1), or None (no limit).
    """

    score_thresh: float = 0.3
    class_thresh: Mapping[int, float] = field(default_factory=dict)
    nms: float | None = None
    agnostic_nms: float | None = None
    max_per_image: int | None = 100

    def min_score(self) -> float:
        """The lowest threshold of any class: the teacher need not return boxes below it."""
        return min([self.score_thresh, *self.class_thresh.values()])

    def to_json(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            "score_thresh": self.score_thresh,
            "class_thresh": {names[i]: t for i, t in sorted(self.class_thresh.items())},
            "nms": self.nms,
            "agnostic_nms": self.agnostic_nms,
            "max_per_image": self.max_per_image,
        }


def _probability(value: Any, option: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{option} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{option} must be in [0, 1] (scores are probabilities), got {value}")
    return value


def _iou(value: Any, option: str) -> float | None:
    if value is None:
        return None
    value = _probability(value, option)
    if value == 0.0:
        raise InputError(f"{option} is an IoU in (0, 1]; 0 would keep one box per image")
    return value


def parse_class_thresh(
    spec: str | Mapping[str, Any] | None, names: Sequence[str]
) -> dict[int, float]:
    """Per-class thresholds from ``"red circle=0.5,blue star=0.3"`` (or a name -> value
    mapping), as vocabulary index -> threshold.

    Raises:
        InputError: an entry without ``=``, a class not in the vocabulary (named, with the
            vocabulary), a value that is not a number in [0, 1], a class given twice.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k), v) for k, v in spec.items()]
    else:
        pairs = []
        for item in str(spec).split(","):
            if not item.strip():
                continue
            name, sep, value = item.rpartition("=")
            if not sep or not name.strip():
                raise InputError(
                    f"--class-thresh entry {item.strip()!r} is not NAME=VALUE; write e.g. "
                    '--class-thresh "red circle=0.5,blue star=0.3"'
                )
            try:
                number: Any = float(value)
            except ValueError:
                number = value.strip()
            pairs.append((name, number))
    index = {n.lower(): i for i, n in enumerate(names)}
    out: dict[int, float] = {}
    for name, value in pairs:
        key = " ".join(name.split()).lower()
        if key not in index:
            shown = ", ".join(list(names)[:8]) + (", ..." if len(names) > 8 else "")
            raise InputError(
                f"--class-thresh names class {name.strip()!r}, which is not in the vocabulary "
                f"({len(names)} classes: {shown}); use the vocabulary's names"
            )
        if index[key] in out:
            raise InputError(f"--class-thresh gives class {name.strip()!r} twice")
        out[index[key]] = _probability(value, f"--class-thresh {name.strip()!r}")
    return out


def check_filter_settings(
    *,
    score_thresh: Any = 0.3,
    class_thresh: str | Mapping[str, Any] | None = None,
    nms: Any = None,
    agnostic_nms: Any = None,
    max_per_image: Any = 100,
    names: Sequence[str],
) -> FilterSettings:
    """Validated :class:`FilterSettings` (errors name the option and the value)."""
    if max_per_image is not None and (
        isinstance(max_per_image, bool) or not isinstance(max_per_image, int) or max_per_image < 1
    ):
        raise InputError(f"--max-per-image must be an integer >= 1, got {max_per_image!r}")
    return FilterSettings(
        score_thresh=_probability(score_thresh, "--score-thresh"),
        class_thresh=parse_class_thresh(class_thresh, names),
        nms=_iou(nms, "--nms"),
        agnostic_nms=_iou(agnostic_nms, "--agnostic-nms"),
        max_per_image=max_per_image,
    )


def filter_detections(
    boxes: Any,
    scores: Any,
    labels: Any,
    settings: FilterSettings,
    *,
    allowed: Sequence[int] | None = None,
) -> np.ndarray:
    """Indices of the detections to keep, by descending score (see the module docstring).

    Args:
        boxes: (N, 4) XYXY (array or tensor).
        scores: (N,) scores.
        labels: (N,) vocabulary indices.
        settings: the filtering.
        allowed: keep only these classes (None: every class).

    Returns:
        (K,) int64 indices into the N detections.
    """
    boxes_t = torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4)
    scores_np = np.asarray(scores, dtype=np.float32).reshape(-1)
    labels_np = np.asarray(labels, dtype=np.int64).reshape(-1)
    thresh = np.full(len(scores_np), settings.score_thresh, dtype=np.float64)
    for label, value in settings.class_thresh.items():
        thresh[labels_np == label] = value
    keep = scores_np.astype(np.float64) >= thresh
    if allowed is not None:
        keep &= np.isin(labels_np, np.asarray(list(allowed), dtype=np.int64))
    idx = np.flatnonzero(keep)
    # descending score, ties in the teacher's order
    idx = idx[np.argsort(-scores_np[idx], kind="stable")]
    if settings.nms is not None and len(idx):
        idx = _nms(boxes_t, idx, settings.nms, labels_np)
    if settings.agnostic_nms is not None and len(idx):
        idx = _nms(boxes_t, idx, settings.agnostic_nms, None)
    if settings.max_per_image is not None:
        idx = idx[: settings.max_per_image]
    return idx.astype(np.int64)


def _nms(
    boxes: torch.Tensor,
    idx: np.ndarray,
    iou: float,
    labels: np.ndarray | None,
) -> np.ndarray:
    """NMS over the detections ``idx`` (sorted by descending score); returns those kept, in
    the same order. ``labels`` None: class-agnostic. Scores are ranked by position, so ties
    resolve by order, deterministically."""
    from torchvision.ops import batched_nms

    ranks = torch.arange(len(idx), 0, -1, dtype=torch.float32)  # rank as the score
    groups = torch.zeros(len(idx), dtype=torch.int64)
    if labels is not None:
        groups = torch.as_tensor(labels[idx])
    # IoU > iou suppresses: torchvision's rule
    kept = batched_nms(boxes[torch.as_tensor(idx)], ranks, groups, iou).numpy()
    return idx[np.sort(kept)]
