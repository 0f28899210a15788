"""Field and type checks of each result before the join, and the collector of the problems
found (one error naming the first kinds and entries; warnings by kind)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ovdet.data.check.fields import is_number
from ovdet.evaluation.predictions.load import PredictionFormatError

MAX_EXAMPLES = 3


class Problems:
    """Collects problems by kind; raises one error naming the first kinds and entries."""

    def __init__(self, source: str):
        self.source = source
        self.errors: dict[str, list] = {}  # message -> [count, examples]
        self.warnings: dict[str, list] = {}

    def error(self, message: str, example: str) -> None:
        self._add(self.errors, message, example)

    def warn(self, message: str, example: str) -> None:
        self._add(self.warnings, message, example)

    @staticmethod
    def _add(store: dict, message: str, example: str) -> None:
        entry = store.setdefault(message, [0, []])
        entry[0] += 1
        if len(entry[1]) < MAX_EXAMPLES:
            entry[1].append(example)

    @staticmethod
    def _text(message: str, count: int, examples: list[str]) -> str:
        more = f" (+{count - len(examples)} more)" if count > len(examples) else ""
        return f"{'; '.join(examples)}{more}: {message}" if examples else message

    def raise_errors(self) -> None:
        if not self.errors:
            return
        parts = [self._text(m, c, ex) for m, (c, ex) in list(self.errors.items())[:3]]
        more = len(self.errors) - 3
        raise PredictionFormatError(
            " | ".join(parts) + (f" | (+{more} more kinds of problem)" if more > 0 else "")
        )

    def emit_warnings(self) -> None:
        for message, (count, examples) in self.warnings.items():
            examples = [ex.replace(self.source, "", 1) for ex in examples]  # named once below
            warnings.warn(
                f"{self.source}: {count} predictions: " + self._text(message, count, examples),
                UserWarning,
                stacklevel=3,
            )


def short(value: Any, limit: int = 50) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(results: list, source: str, iou_types: Sequence[str]) -> Problems:
    """Field and type checks of each result (geometry against images comes after the join)."""
    p = Problems(source)
    need_box = "bbox" in iou_types
    need_segm = "segm" in iou_types
    for i, r in enumerate(results):
        at = f"{source}[{i}]"
        if not isinstance(r, Mapping):
            p.error("each result must be a json object", f"{at} = {short(r)}")
            continue
        if "image_id" not in r and "file_name" not in r:
            p.error("results need an 'image_id' (or a 'file_name')", f"{at} has no 'image_id'")
        if "category_id" not in r and "category_name" not in r:
            p.error(
                "results need a 'category_id' (or a 'category_name')",
                f"{at} has no 'category_id'",
            )
        if "score" not in r:
            p.error("results need a 'score' (detection confidence)", f"{at} has no 'score'")
        else:
            s = r["score"]
            if not is_number(s):
                p.error(
                    "'score' must be a json number"
                    + (
                        " (a number written as a string: remove the quotes)"
                        if isinstance(s, str)
                        else ""
                    ),
                    f"{at} has score={short(s)}",
                )
            elif not math.isfinite(s):
                p.error("'score' must be finite (NaN cannot be ranked)", f"{at} has score={s}")
            elif not 0.0 <= s <= 1.0:
                p.warn(
                    "score outside [0, 1] (logits?): AP depends only on the ranking, so it is "
                    "scored as given",
                    f"{at} has score={s:g}",
                )
        if need_box or "bbox" in r:
            _validate_box(r, at, p, required=need_box)
        if need_segm:
            if "segmentation" not in r:
                p.error(
                    "segm evaluation needs a 'segmentation' (RLE or polygons) in every result",
                    f"{at} has no 'segmentation'",
                )
            else:
                segm = r["segmentation"]
                rle = isinstance(segm, Mapping) and "counts" in segm and "size" in segm
                poly = (
                    isinstance(segm, list)
                    and segm
                    and all(isinstance(q, list) and len(q) >= 6 for q in segm)
                )
                if not (rle or poly):
                    p.error(
                        "a result's 'segmentation' must be an RLE dict {'size': [h, w], "
                        "'counts': ...} or a list of polygons [[x1, y1, x2, y2, x3, y3, ...]]",
                        f"{at} has segmentation={short(segm)}",
                    )
    return p


def _validate_box(r: Mapping, at: str, p: Problems, *, required: bool) -> None:
    if "bbox" not in r:
        if required:
            p.error("bbox evaluation needs a 'bbox' [x, y, w, h]", f"{at} has no 'bbox'")
        return
    box = r["bbox"]
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        p.error("expected [x, y, w, h]", f"{at} has bbox={short(box)}")
    elif not all(is_number(v) for v in box):
        strings = any(isinstance(v, str) for v in box)
        p.error(
            "'bbox' values must be json numbers"
            + (" (numbers written as strings: remove the quotes)" if strings else ""),
            f"{at} has bbox={short(box)}",
        )
    elif not all(math.isfinite(v) for v in box):
        p.error("'bbox' has NaN or infinite values", f"{at} has bbox={short(list(box))}")
    elif box[2] < 0 or box[3] < 0:
        p.error(
            "negative box width or height: COCO results are [x, y, width, height] (XYXY "
            "boxes must be converted)",
            f"{at} has bbox={short(list(box))}",
        )
    elif box[2] == 0 or box[3] == 0:
        p.warn(
            "zero-size boxes (they can never match an object: scored as false positives)",
            f"{at} has bbox={short(list(box))}",
        )
