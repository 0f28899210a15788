"""Data of small-SAM pretraining: COCO instance masks read per image, and the training samples
(the image as SAM's encoder takes it, jittered box prompts, low-resolution ground-truth masks).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pycocotools import mask as mask_util
from torch.utils.data import Dataset

from ovdet.modeling.sam.box_prompt import clip_boxes
from ovdet.utils.errors import InputError

__all__ = [
    "MaskedImage",
    "SamData",
    "SamMaskDataset",
    "decode_segmentation",
    "epoch_order",
    "jitter_boxes",
    "low_res_target",
    "num_batches",
    "read_masked_images",
    "resolve_sam_data",
]

_GENERATE = "generate one with `ovdet data ov-shapes --out {}`"


@dataclass(frozen=True)
class MaskedImage:
    """One image with its objects: XYXY boxes (float64, pixels), COCO segmentations, names."""

    file: Path
    height: int
    width: int
    boxes: np.ndarray  # (N, 4) XYXY
    segmentations: tuple[Any, ...]  # COCO polygons or RLE, one per box
    classes: tuple[str, ...]


@dataclass
class SamData:
    """The files of a pretraining run (:func:`resolve_sam_data`)."""

    root: Path
    train_json: Path
    val_json: Path | None
    base: list[str] | None  # base class names (None: every class of train_json is trained)
    novel: list[str]


def resolve_sam_data(
    data_dir: str | os.PathLike,
    *,
    train_json: str | os.PathLike | None = None,
    val_json: str | os.PathLike | None = None,
) -> SamData:
    """The training / validation jsons and base / novel names of an OV-Shapes-like folder.

    Defaults: ``DIR/train_base.json`` (base-class objects only; else ``train.json``),
    ``DIR/val.json`` (optional) and ``DIR/split.json`` (``{"base": [...], "novel": [...]}``,
    optional: without it every class is base and nothing is novel).

    Raises:
        FileNotFoundError: no such folder, or no training json in it.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: no such folder; {_GENERATE.format(root)}")

    def pick(explicit, *names: str) -> Path | None:
        if explicit is not None:
            path = Path(explicit).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: give an existing COCO json")
            return path
        return next((root / n for n in names if (root / n).is_file()), None)

    train = pick(train_json, "train_base.json", "train.json")
    if train is None:
        raise FileNotFoundError(
            f"--data {root}: no train_base.json or train.json in it; {_GENERATE.format(root)}"
        )
    base, novel = None, []
    split = root / "split.json"
    if split.is_file():
        info = _load_json(split)
        base = [str(n) for n in info.get("base", [])] or None
        novel = [str(n) for n in info.get("novel", [])]
    return SamData(root, train, pick(val_json, "val.json"), base, novel)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); give a COCO instances json") from exc


def _image_root(json_file: Path, first: str, roots: Sequence[Path]) -> Path:
    root = next((r for r in roots if (r / first).is_file()), None)
    if root is None:
        tried = ", ".join(str(r / first) for r in roots)
        raise FileNotFoundError(f"{json_file}: image {first!r} not found (tried {tried})")
    return root


def read_masked_images(
    json_file: str | os.PathLike,
    image_roots: Sequence[str | os.PathLike],
    *,
    classes: Sequence[str] | None = None,
) -> list[MaskedImage]:
    """The images of a COCO instances json with their non-crowd objects and masks.

    Args:
        json_file: COCO json whose annotations carry ``segmentation`` (polygons or RLE).
        image_roots: candidate folders of ``file_name`` (the first holding the first image).
        classes: keep only objects of these category names (None: all).

    Returns:
        The images with at least one kept object, in the json's image order.

    Raises:
        InputError: an annotation without a ``segmentation`` (the dataset has no masks), or
            one that refers to an unknown image or category; FileNotFoundError: missing images.
    """
    json_file = Path(json_file)
    data = _load_json(json_file)
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations")):
        raise InputError(f"{json_file}: not a COCO instances json (no images / annotations)")
    names = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
    keep = None if classes is None else set(classes)
    per_image: dict[int, list[dict]] = {}
    for i, ann in enumerate(data["annotations"]):
        if ann.get("iscrowd", 0):
            continue
        if not ann.get("segmentation"):
            raise InputError(
                f"{json_file}: annotation {ann.get('id', i)} has no 'segmentation': SAM "
                "pretraining needs instance masks; give a COCO json with polygon or RLE "
                "masks (`ovdet data ov-shapes` writes them)"
            )
        cat = int(ann["category_id"])
        if cat not in names:
            raise InputError(f"{json_file}: annotation {ann.get('id', i)}: unknown category {cat}")
        if keep is None or names[cat] in keep:
            per_image.setdefault(int(ann["image_id"]), []).append(ann)
    images = [im for im in data["images"] if int(im["id"]) in per_image]
    if not images:
        return []
    roots = [Path(r) for r in image_roots]
    root = _image_root(json_file, str(images[0]["file_name"]), roots)
    out = []
    for im in images:
        anns = per_image[int(im["id"])]
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        file = root / str(im["file_name"])
        if not file.is_file():
            raise FileNotFoundError(f"{json_file}: image {file} not found")
        out.append(
            MaskedImage(
                file,
                int(im["height"]),
                int(im["width"]),
                boxes,
                tuple(a["segmentation"] for a in anns),
                tuple(names[int(a["category_id"])] for a in anns),
            )
        )
    return out


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of a COCO segmentation (polygons, uncompressed or compressed RLE)."""
    if isinstance(segmentation, list):
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_util.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    return mask_util.decode(rle).astype(bool)


def jitter_boxes(
    boxes: np.ndarray,
    height: int,
    width: int,
    generator: torch.Generator,
    *,
    std: float = 0.1,
    max_px: float = 20.0,
) -> np.ndarray:
    """SAM's training box noise: each coordinate moved by N(0, ``std`` x the box's side),
    at most ``max_px`` pixels, then clipped to the image (corners in order)."""
    if len(boxes) == 0:
        return boxes.copy()
    sides = boxes[:, 2:] - boxes[:, :2]
    scale = np.concatenate([sides, sides], axis=1)  # (w, h, w, h)
    noise = torch.randn(boxes.shape, generator=generator, dtype=torch.float64).numpy()
    moved = boxes + np.clip(noise * std * scale, -max_px, max_px)
    return clip_boxes(moved, height, width)


def low_res_target(masks: torch.Tensor, input_size: tuple[int, int], img_size: int) -> torch.Tensor:
    """Ground-truth masks (N, H, W) bool -> (N, img_size/4, img_size/4) float {0, 1} on the
    grid of SAM's low-resolution logits: resized as the image is (to ``input_size``), padded
    to the encoder's square input, averaged over 4 x 4 cells and thresholded at 0.5."""
    h, w = input_size
    x = masks[:, None].float()
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    x = F.pad(x, (0, img_size - w, 0, img_size - h))
    return (F.avg_pool2d(x, 4)[:, 0] >= 0.5).float()


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63)


class SamMaskDataset(Dataset):
    """Training samples of small-SAM pretraining.

    Item ``i`` -> dict ``image`` (3, h, w) uint8 (resized by SAM's ``ResizeLongestSide``, not
    yet normalised or padded: ``Sam.preprocess`` does that), ``boxes`` (K, 4) float32 prompts
    in the encoder's input coordinates (ground-truth boxes jittered by
    :func:`jitter_boxes`), ``target`` (K, S/4, S/4) float ground-truth masks on the
    low-resolution grid (:func:`low_res_target`). At most ``max_boxes`` objects per image,
    drawn at random when there are more.

    The randomness of item ``i`` depends only on ``(seed, epoch, i)`` (:meth:`set_epoch`), so
    a resumed run draws exactly what an uninterrupted one does.
    """

    def __init__(
        self,
        images: Sequence[MaskedImage],
        img_size: int,
        *,
        max_boxes: int = 8,
        seed: int = 0,
        jitter: float = 0.1,
        max_jitter_px: float = 20.0,
    ):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.images = list(images)
        self.img_size = img_size
        self.transform = ResizeLongestSide(img_size)
        self.max_boxes = max_boxes
        self.seed = seed
        self.jitter = jitter
        self.max_jitter_px = max_jitter_px
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.images[i]
        gen = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, i))
        with Image.open(rec.file) as im:
            rgb = np.asarray(im.convert("RGB"))
        size = rgb.shape[:2]
        chosen = np.arange(len(rec.boxes))
        if len(chosen) > self.max_boxes:
            chosen = np.sort(torch.randperm(len(chosen), generator=gen)[: self.max_boxes].numpy())
        boxes = jitter_boxes(
            rec.boxes[chosen], *size, gen, std=self.jitter, max_px=self.max_jitter_px
        )
        masks = np.stack([decode_segmentation(rec.segmentations[j], *size) for j in chosen])
        resized = self.transform.apply_image(rgb)
        input_size = resized.shape[:2]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1),
            "boxes": torch.as_tensor(self.transform.apply_boxes(boxes, size), dtype=torch.float),
            "target": low_res_target(torch.from_numpy(masks), input_size, self.img_size),
        }


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of an epoch (a function of seed and epoch only)."""
    gen = torch.Generator().manual_seed(_sample_seed(seed, epoch, 2**31 - 1))
    return torch.randperm(n, generator=gen).tolist()


def num_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
