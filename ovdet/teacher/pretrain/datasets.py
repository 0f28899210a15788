"""Training pairs of small-CLIP pretraining: object crops with class-name captions, and whole
images with their captions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch.utils.data import Dataset

from ovdet.teacher.pretrain.config import CAPTION_TEMPLATES
from ovdet.teacher.pretrain.files import CaptionedImage, ObjectCrop

__all__ = ["CropCaptionDataset", "ImageCaptionDataset", "crop_region"]


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"image not found: {path}") from e
    except OSError as e:
        raise OSError(f"cannot read image {path}: {e}") from e


def crop_region(
    box: Sequence[float], width: int, height: int, scale: float, shift: tuple[float, float]
) -> tuple[int, int, int, int]:
    """Integer crop (x0, y0, x1, y1) of box (x, y, w, h) enlarged by ``scale`` about its centre,
    moved by ``shift`` (fractions of w, h), clipped to the image; at least 1 px each way."""
    x, y, w, h = box
    cx, cy = x + w / 2 + shift[0] * w, y + h / 2 + shift[1] * h
    hw, hh = w * scale / 2, h * scale / 2
    x0 = min(max(math.floor(cx - hw), 0), width - 1)
    y0 = min(max(math.floor(cy - hh), 0), height - 1)
    x1 = max(min(math.ceil(cx + hw), width), x0 + 1)
    y1 = max(min(math.ceil(cy + hh), height), y0 + 1)
    return x0, y0, x1, y1


class CropCaptionDataset(Dataset):
    """Object crops paired with class-name captions.

    Item ``i`` -> ``(image (3, S, S) float, tokens (context_length,) long, positive_id int)``
    where ``positive_id`` is the class index (pairs of one class are positives of each other).

    Args:
        crops: the objects.
        classnames: names indexed by ``ObjectCrop.label``.
        preprocess: PIL -> tensor (open_clip's eval transform).
        tokenizer: list[str] -> (N, L) long.
        templates: caption templates; one is drawn at random per item when ``train``.
        train: random context jitter, template and horizontal flip; otherwise the fixed
            ``eval_scale``, no shift, first template.
        scale_range: enlargement factor range of the box (train).
        shift: max centre shift as a fraction of the box size (train).
        eval_scale: enlargement factor when not ``train``.
    """

    def __init__(
        self,
        crops: Sequence[ObjectCrop],
        classnames: Sequence[str],
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        templates: Sequence[str] = CAPTION_TEMPLATES,
        train: bool = True,
        scale_range: tuple[float, float] = (1.0, 1.6),
        shift: float = 0.1,
        eval_scale: float = 1.0,
    ):
        self.crops = list(crops)
        self.classnames = list(classnames)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.templates = list(templates)
        self.train = train
        self.scale_range = scale_range
        self.shift = shift
        self.eval_scale = eval_scale

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        crop = self.crops[i]
        image = _open_rgb(crop.file)
        if self.train:
            r = torch.rand(4).tolist()
            lo, hi = self.scale_range
            scale = lo + (hi - lo) * r[0]
            shift = ((2 * r[1] - 1) * self.shift, (2 * r[2] - 1) * self.shift)
            template = self.templates[int(torch.randint(len(self.templates), ()))]
        else:
            scale, shift, r = self.eval_scale, (0.0, 0.0), [0.0, 0.0, 0.0, 1.0]
            template = self.templates[0]
        region = image.crop(crop_region(crop.box, image.width, image.height, scale, shift))
        if r[3] < 0.5:
            region = region.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        caption = template.format(self.classnames[crop.label])
        return self.preprocess(region), self.tokenizer([caption])[0], crop.label


class ImageCaptionDataset(Dataset):
    """Whole images paired with one of their captions (drawn at random when ``train``).

    Item ``i`` -> ``(image (3, S, S) float, tokens (context_length,) long, id_offset + i)``:
    every image is its own positive group. Images are not flipped (captions may say
    "left"/"right").
    """

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        train: bool = True,
        id_offset: int = 0,
    ):
        self.records = list(records)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.train = train
        self.id_offset = id_offset

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rec = self.records[i]
        k = int(torch.randint(len(rec.captions), ())) if self.train else 0
        image = self.preprocess(_open_rgb(rec.file))
        return image, self.tokenizer([rec.captions[k]])[0], self.id_offset + i
