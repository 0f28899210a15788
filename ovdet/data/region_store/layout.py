"""On-disk layout of a region store: format constants, file names and image ids."""

from __future__ import annotations

import re
from typing import Any, Union

import numpy as np
import torch

__all__ = [
    "CHECKED_KEYS",
    "DTYPES",
    "FORMAT",
    "INDEX_RE",
    "METADATA_FILE",
    "SHARD_DIR",
    "SHARD_RE",
    "TMP_RE",
    "VERSION",
    "ImageId",
    "describe_id",
    "normalize_image_id",
]

ImageId = Union[int, str]

FORMAT = "ovdet-region-store"
VERSION = 1
METADATA_FILE = "store.json"
SHARD_DIR = "shards"
DTYPES = {"float16": torch.float16, "float32": torch.float32}
# keys of store.json that must agree when an existing store is opened with explicit values
CHECKED_KEYS = ("teacher", "dim", "dtype", "scales", "top_m", "proposals")

INDEX_RE = re.compile(r"^index-rank(\d+)\.jsonl$")
SHARD_RE = re.compile(r"^r(\d+)-(\d+)\.safetensors$")
# temporary files of utils.io.atomic_write: ".<final name>.<random>.tmp"
TMP_RE = re.compile(r"^\.r(\d+)-(\d+)\.safetensors\..*\.tmp$")


def normalize_image_id(image_id: Any) -> ImageId:
    """An image id as stored: Python ``int`` (numpy / torch integers converted) or ``str``.

    Raises:
        TypeError: for any other type (bool and float included).
    """
    if isinstance(image_id, str):
        return image_id
    if isinstance(image_id, bool):
        raise TypeError(f"image id must be an int or a str, got bool {image_id!r}")
    if isinstance(image_id, (int, np.integer)):
        return int(image_id)
    if (
        isinstance(image_id, torch.Tensor)
        and image_id.numel() == 1
        and not (image_id.is_floating_point() or image_id.dtype == torch.bool)
    ):
        return int(image_id.item())
    raise TypeError(f"image id must be an int or a str, got {type(image_id).__name__} {image_id!r}")


def describe_id(image_id: ImageId) -> str:
    """An id with its type, for error messages: ``5 (int)`` vs ``'5' (str)``."""
    return f"{image_id!r} ({type(image_id).__name__})"
