"""SAM masks for the boxes of a COCO dataset: the offline targets of a SAM-supervised mask
head (``ovdet sam-masks``).

Every annotation without a ``segmentation`` (or every annotation, ``replace=True``) gets
SAM's mask of its box as RLE ``segmentation`` and SAM's predicted IoU as ``mask_score``;
``area`` stays the annotation's. Training with ``OVDatasetMapper(masks_optional=True,
min_mask_score=T)`` then uses a mask as target only when its score is at least T (docs/sam.md).

Streaming and resume: one journal line per image (``masks.jsonl`` in the output's folder,
:class:`~ovdet.utils.journal.Journal`), appended per image; a killed run started again skips
the images it finished; the output json is written atomically at the end from the journal.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ovdet.utils.errors import InputError
from ovdet.utils.io import atomic_write_text, file_sha256, write_json

__all__ = ["add_sam_masks"]


def _boxes_xyxy(anns: list[dict[str, Any]]) -> np.ndarray:
    boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def add_sam_masks(
    coco_json: str | os.PathLike,
    image_root: str | os.PathLike,
    sam: str,
    output: str | os.PathLike,
    *,
    replace: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``output``: ``coco_json`` with SAM masks for its (box-only) annotations.

    Args:
        coco_json, image_root: the dataset (``file_name`` relative to ``image_root``).
        sam: a SAM spec (:func:`~ovdet.modeling.sam.sam_from_spec`: a shipped name such as
            ``ov-shapes-small-sam``, ``TYPE:CHECKPOINT`` or a checkpoint path).
        output: the output json (its journal ``<output>.jsonl`` and settings
            ``<output>.run.json`` beside it while it runs).
        replace: also replace the masks annotations already have.

    Returns:
        ``{"images", "masked", "mean_mask_score", "output"}``.

    Raises:
        FileNotFoundError, InputError: a missing file, a json without images / annotations, a
            journal of another run beside ``output``.
    """
    import pycocotools.mask as mask_util

    from ovdet.utils.device import resolve_device
    from ovdet.utils.image import load_image
    from ovdet.utils.journal import Journal

    from .box_prompt import BoxPromptedSAM
    from .build import sam_from_spec

    path = Path(coco_json).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--coco-json {path} not found")
    root = Path(image_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--image-root {root} is not a folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"--coco-json {path} is not a JSON file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError(f"--coco-json {path} has no 'images' list; is it a COCO dataset?")
    model, sam_identity = sam_from_spec(sam)
    out = Path(output).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"coco_json": {"file": str(path), "sha256": file_sha256(path)},
                "sam": sam_identity, "replace": bool(replace)}  # fmt: skip
    run_file = out.with_name(out.name + ".run.json")
    journal_file = out.with_name(out.name + ".jsonl")
    if run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        if old != settings:
            raise InputError(
                f"{journal_file} belongs to another sam-masks run (other dataset, SAM or "
                "--replace); delete it and its .run.json, or choose another --output"
            )
    else:
        journal_file.unlink(missing_ok=True)
        write_json(run_file, settings, indent=1, durable=True)
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in data.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    images = {img["id"]: img["file_name"] for img in data["images"]}
    journal = Journal(journal_file, images)
    todo = [img for img in data["images"] if img["id"] not in journal.done()]
    prompted = BoxPromptedSAM(model, device=resolve_device(device or "auto"))
    from tqdm import tqdm

    for img in tqdm(todo, desc="sam-masks", unit="img", disable=not progress):
        anns = [a for a in by_image.get(img["id"], []) if replace or "segmentation" not in a]
        entry: dict[str, Any] = {"image_id": img["id"], "file_name": img["file_name"]}
        if anns:
            try:
                rgb = load_image(root / img["file_name"])
            except Exception as exc:  # noqa: BLE001  (reported, the run goes on)
                print(f"ovdet sam-masks: skipping {img['file_name']}: {exc}", file=sys.stderr)
                journal.append([dict(entry, error=str(exc))])
                continue
            res = prompted.predict(rgb, _boxes_xyxy(anns))
            masks = res.masks.numpy().astype(np.uint8)
            entry["masks"] = {}
            for ann, mask, score in zip(anns, masks, res.iou.numpy()):
                rle = mask_util.encode(np.asfortranarray(mask))
                rle["counts"] = rle["counts"].decode("ascii")
                entry["masks"][str(ann["id"])] = [rle, round(float(score), 6)]
        journal.append([entry])
    if journal.failed:
        raise InputError(
            f"{len(journal.failed)} images could not be read (see the messages above); fix or "
            "remove them and run again: the finished images are kept"
        )
    masked, scores = 0, []
    with ExitStack() as stack:
        read = journal.reader(stack)
        for img in data["images"]:
            found = read(img["id"]).get("masks", {})
            for ann in by_image.get(img["id"], []):
                if str(ann["id"]) in found:
                    rle, score = found[str(ann["id"])]
                    ann["segmentation"], ann["mask_score"] = rle, score
                    masked += 1
                    scores.append(score)
    atomic_write_text(out, json.dumps(data, separators=(",", ":")) + "\n", durable=True)
    return {
        "images": len(data["images"]),
        "masked": masked,
        "mean_mask_score": round(float(np.mean(scores)), 4) if scores else None,
        "output": str(out),
    }
