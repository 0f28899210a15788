"""The journal of a pseudo-label run and the final files built from it, streaming.

:class:`LabelJournal` (:class:`ovdet.utils.journal.Journal`) appends one json line per image
(fsynced per batch) and remembers only where each image's line starts, never the labels.
:func:`write_outputs` reads the lines back image by image, in image order, and writes
``pseudo_labels.json``, ``summary.json`` and ``errors.json`` atomically: memory does not grow
with the number of images or boxes beyond the per-image offsets and the per-class counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ovdet.utils.io import atomic_write, write_json
from ovdet.utils.journal import Journal as LabelJournal  # labels.jsonl (ovdet.utils.journal)

__all__ = [
    "HISTOGRAM_BINS",
    "LabelJournal",
    "Summary",
    "write_outputs",
]

OUTPUT = "pseudo_labels.json"
SUMMARY = "summary.json"
ERRORS = "errors.json"
HISTOGRAM_BINS = [round(0.1 * i, 1) for i in range(11)]  # [0, 0.1), ..., [0.9, 1.0]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Summary:
    """Counts for ``summary.json``: images, images with boxes, boxes per class, scores."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.images = 0
        self.images_with_boxes = 0
        self.errors = 0
        self.per_class = [0] * len(names)
        self.histogram = [0] * (len(HISTOGRAM_BINS) - 1)

    def add(self, annotations: Sequence[dict[str, Any]]) -> None:
        self.images += 1
        self.images_with_boxes += bool(annotations)
        last = len(self.histogram) - 1
        for ann in annotations:
            self.per_class[ann["category_id"] - 1] += 1
            self.histogram[min(int(ann["score"] * 10), last)] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "images_with_boxes": self.images_with_boxes,
            "unreadable_images": self.errors,
            "boxes": sum(self.per_class),
            "boxes_per_class": dict(zip(self.names, self.per_class)),
            "score_histogram": {"bins": HISTOGRAM_BINS, "counts": self.histogram},
        }


def categories(names: Sequence[str], novel: Sequence[str] | None) -> list[dict[str, Any]]:
    """COCO categories 1..C in vocabulary order; ``novel`` when the teacher knows it."""
    cats: list[dict[str, Any]] = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    if novel is not None:
        for cat in cats:
            cat["novel"] = cat["name"] in novel
    return cats


def write_outputs(
    out: Path,
    image_ids: Sequence[int],
    entry_of: Callable[[int], dict[str, Any]],
    names: Sequence[str],
    novel: Sequence[str] | None,
) -> dict[str, Any]:
    """Write the final files of ``out`` from the journal entries of ``image_ids`` (in that
    order), reading each entry twice (images, then annotations) rather than holding them.

    Returns:
        the content of ``summary.json``.
    """
    summary = Summary(names)

    def entries() -> Iterator[dict[str, Any]]:
        return (entry_of(i) for i in image_ids)

    def write_labels(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('{"images":[')
            sep = ""
            for e in entries():
                if "error" not in e:
                    image = {"id": e["image_id"], "file_name": e["file_name"]}
                    image.update(width=e["width"], height=e["height"])
                    f.write(sep + _dumps(image))
                    sep = ","
            f.write('],"categories":' + _dumps(categories(names, novel)) + ',"annotations":[')
            ann_id, sep = 0, ""
            for e in entries():
                if "error" in e:
                    summary.errors += 1
                    continue
                summary.add(e["annotations"])
                for ann in e["annotations"]:
                    ann_id += 1
                    f.write(sep + _dumps({"id": ann_id, "image_id": e["image_id"], **ann}))
                    sep = ","
            f.write("]}")

    def write_errors(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("[")
            sep = ""
            for e in entries():
                if "error" in e:
                    f.write(sep + _dumps({k: e[k] for k in ("image_id", "file_name", "error")}))
                    sep = ","
            f.write("]")

    atomic_write(out / OUTPUT, write_labels, durable=True)
    atomic_write(out / ERRORS, write_errors, durable=True)
    result = summary.to_json()
    write_json(out / SUMMARY, result, indent=1, durable=True)
    return result
