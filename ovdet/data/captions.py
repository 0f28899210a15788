"""Image captions (COCO captions format) merged into dataset dicts as ``captions``.

A dataset registered with ``extra_metadata={"captions_json": PATH}`` gets, in every dataset
dict, ``captions``: the list of caption strings of that image (empty if it has none). The
HierKD caption distiller and caption-based pseudo-labelling read that key.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict


def load_captions(path: str | os.PathLike) -> dict[int, list[str]]:
    """Read a COCO captions json (``{"annotations": [{"image_id", "caption"}, ...]}``).

    Returns:
        image id -> captions, in file order.

    Raises:
        FileNotFoundError / ValueError naming the file, and the index and field at fault.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"captions file not found: {path}")
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: a COCO captions file needs a top-level 'annotations' list")
    out: dict[int, list[str]] = defaultdict(list)
    for i, ann in enumerate(data["annotations"]):
        for key in ("image_id", "caption"):
            if not isinstance(ann, dict) or key not in ann:
                raise ValueError(f"{path}: annotations[{i}] has no field '{key}'")
        if not isinstance(ann["caption"], str):
            raise ValueError(f"{path}: annotations[{i}].caption is not a string")
        out[ann["image_id"]].append(ann["caption"].strip())
    return dict(out)


def attach_captions(dataset_dicts: list[dict], captions: dict[int, list[str]]) -> list[dict]:
    """Set ``captions`` on every dict from its ``image_id`` (in place; returns the list)."""
    for record in dataset_dicts:
        record["captions"] = list(captions.get(record["image_id"], []))
    return dataset_dicts
