"""Vision-language pretraining of a small CLIP teacher on COCO-format detection data + captions.

``ovdet pretrain-clip --data DIR --out teacher.pt`` trains :mod:`ovdet.teacher.small_clip` from
scratch on two kinds of (image, text) pairs, mixed at a ratio:

- object crops: every non-crowd box of the training json, cut with context jitter (the box is
  enlarged about its centre by a random factor in ``crop_scale_range``, shifted by up to
  ``crop_shift`` of its size and clipped to the image, the same geometry the region teacher
  uses at test time), paired with a class-name caption from :data:`CAPTION_TEMPLATES`
  ("a photo of a {name}.", ...). All categories of the json are used, base *and* novel: the
  teacher knows them the way web-trained CLIP knows "cat".
- whole images paired with one of their captions from a COCO captions json
  (``{"images": [...], "annotations": [{"image_id", "id", "caption"}]}``).

Objectives: ``itc`` (symmetric InfoNCE) or ``siglip`` (pairwise sigmoid), from
:mod:`ovdet.teacher.clip_losses`; pairs of the same class are positives of each other.
Optimiser AdamW (no weight decay on gains, biases, logit scale/bias), linear warmup then cosine
decay, gradient-norm clipping, logit scale kept in [0, log 100].

After training, zero-shot top-1 accuracy on the object crops of the validation json (all its
classes compete; base / novel from ``split.json`` or ``--novel``) is measured with the
template ensemble, and the model is saved as a plain state_dict (``torch.save`` of tensors, or
safetensors for a ``.safetensors`` path) with its open_clip model config ``<stem>.json`` beside
it. It loads with ``open_clip.create_model("ovdet-small-clip", pretrained=path)`` (after
:func:`ovdet.teacher.small_clip.register_clip_configs`; ``force_image_size=`` when trained at a
non-default ``--image-size``; ``ovdet-small-clip-sigmoid`` for ``--objective siglip``) or with
:func:`ovdet.teacher.small_clip.load_small_clip`.

Data directory layout read by default (each file can be given explicitly instead)::

    DIR/train_all.json (else train.json)   COCO instances used for crops
    DIR/val.json                          COCO instances for zero-shot evaluation
    DIR/captions_train.json               COCO captions (optional: no whole-image pairs)
    DIR/split.json                        {"base": [...], "novel": [...]} (optional)
    DIR/images/{train,val}/...            images; ``file_name`` is looked up under
                                          DIR/images/<split>, DIR/images, then DIR
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from PIL import Image
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from ovdet.teacher.clip_losses import MAX_LOGIT_SCALE, itc_loss, siglip_loss
from ovdet.teacher.small_clip import (
    SMALL_CLIP,
    SMALL_CLIP_SIGMOID,
    SmallCLIP,
    create_small_clip,
    save_small_clip,
)
from ovdet.teacher.zero_shot import class_text_embeddings, encode_images, zero_shot_accuracy
from ovdet.utils.device import resolve_device

__all__ = [
    "CAPTION_TEMPLATES",
    "CaptionedImage",
    "CocoInstances",
    "CropCaptionDataset",
    "DataFiles",
    "ImageCaptionDataset",
    "ObjectCrop",
    "PretrainConfig",
    "evaluate_zero_shot",
    "main",
    "pretrain_clip",
    "read_captions",
    "read_coco_instances",
    "resolve_data_files",
]

# Caption templates for object crops; the same set is the zero-shot prompt ensemble.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a {}.",
    "a photo of the {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a drawing of a {}.",
    "a rendering of a {}.",
    "the {}.",
)


# --------------------------------------------------------------------------------------------
# Reading COCO-format files


@dataclass(frozen=True)
class ObjectCrop:
    """One annotated object: image file, box (x, y, w, h) in pixels, contiguous class index."""

    file: Path
    box: tuple[float, float, float, float]
    label: int


@dataclass(frozen=True)
class CaptionedImage:
    """One image file with its captions."""

    file: Path
    captions: tuple[str, ...]


@dataclass
class CocoInstances:
    """A COCO instances json reduced to what pretraining needs.

    Attributes:
        json_file: the file read.
        image_root: folder the images' ``file_name`` are relative to.
        classnames: category names in category-id order (contiguous index = position).
        crops: non-crowd annotations with a positive-area box.
        images: {image id: file path}.
    """

    json_file: Path
    image_root: Path
    classnames: list[str]
    crops: list[ObjectCrop]
    images: dict[int, Path]


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"json file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid json ({e})") from e


def _field(record: Any, key: str, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise KeyError(f"{where}: missing field {key!r}")
    return record[key]


def _resolve_root(json_file: Path, file_names: Sequence[str], candidates: Sequence[Path]) -> Path:
    """First candidate folder that holds the first image, and check that all images exist."""
    if not file_names:
        return candidates[0]
    probe = file_names[0]
    root = next((c for c in candidates if (c / probe).is_file()), None)
    if root is None:
        tried = ", ".join(str(c / probe) for c in candidates)
        raise FileNotFoundError(
            f"{json_file}: image {probe!r} (images[0].file_name) not found; tried {tried}. "
            "Pass the image folder explicitly (--image-root / --val-image-root)."
        )
    missing = [f for f in file_names if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{json_file}: {len(missing)} image file(s) missing under {root}, e.g. "
            f"{[str(root / m) for m in missing[:3]]}"
        )
    return root


def read_coco_instances(
    json_file: Union[str, Path],
    image_roots: Sequence[Union[str, Path]],
    *,
    classnames: Optional[Sequence[str]] = None,
) -> CocoInstances:
    """Read a COCO instances json and check that its images exist.

    Args:
        json_file: COCO instances json (``images``, ``annotations``, ``categories``).
        image_roots: candidate folders for ``file_name``; the first that holds the first image
            is used.
        classnames: if given, the category names are mapped onto this vocabulary (index =
            position); a category of the json missing from it is an error.

    Returns:
        :class:`CocoInstances`.
    """
    json_file = Path(json_file)
    data = _load_json(json_file)
    images_raw = _field(data, "images", str(json_file))
    anns_raw = _field(data, "annotations", str(json_file))
    cats_raw = _field(data, "categories", str(json_file))
    cats = sorted(
        (
            (
                int(_field(c, "id", f"{json_file}: categories[{i}]")),
                str(_field(c, "name", f"{json_file}: categories[{i}]")),
            )
            for i, c in enumerate(cats_raw)
        ),
    )
    names = [n for _, n in cats]
    if classnames is None:
        classnames = names
    vocab = {n: i for i, n in enumerate(classnames)}
    unknown = [n for n in names if n not in vocab]
    if unknown:
        raise ValueError(f"{json_file}: categories {unknown} are not in the vocabulary")
    cat_to_label = {cid: vocab[n] for cid, n in cats}
    file_names: dict[int, str] = {}
    for i, im in enumerate(images_raw):
        where = f"{json_file}: images[{i}]"
        file_names[int(_field(im, "id", where))] = str(_field(im, "file_name", where))
    roots = [Path(r) for r in image_roots]
    root = _resolve_root(json_file, list(file_names.values()), roots)
    crops = []
    for i, ann in enumerate(anns_raw):
        where = f"{json_file}: annotations[{i}]"
        if ann.get("iscrowd", 0):
            continue
        image_id = int(_field(ann, "image_id", where))
        if image_id not in file_names:
            raise KeyError(f"{where}: image_id {image_id} is not in 'images'")
        cat = int(_field(ann, "category_id", where))
        if cat not in cat_to_label:
            raise KeyError(f"{where}: category_id {cat} is not in 'categories'")
        box = [float(v) for v in _field(ann, "bbox", where)]
        if len(box) != 4:
            raise ValueError(f"{where}: bbox must be [x, y, w, h], got {box}")
        if box[2] < 1 or box[3] < 1:
            continue  # degenerate box: nothing to crop
        crops.append(ObjectCrop(root / file_names[image_id], tuple(box), cat_to_label[cat]))
    images = {k: root / v for k, v in file_names.items()}
    return CocoInstances(json_file, root, list(classnames), crops, images)


def read_captions(
    json_file: Union[str, Path],
    image_roots: Sequence[Union[str, Path]],
    *,
    fallback_images: Optional[dict[int, Path]] = None,
) -> list[CaptionedImage]:
    """Read a COCO captions json into (image file, captions) records.

    Args:
        json_file: ``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}``.
        image_roots: candidate folders for ``file_name``.
        fallback_images: {image id: path} used when the json has no ``images`` list (e.g. from
            the instances json).

    Returns:
        One record per image with at least one caption, in image-id order.
    """
    json_file = Path(json_file)
    data = _load_json(json_file)
    anns = _field(data, "annotations", str(json_file))
    if "images" in data:
        file_names = {}
        for i, im in enumerate(data["images"]):
            where = f"{json_file}: images[{i}]"
            file_names[int(_field(im, "id", where))] = str(_field(im, "file_name", where))
        root = _resolve_root(json_file, list(file_names.values()), [Path(r) for r in image_roots])
        paths = {k: root / v for k, v in file_names.items()}
    elif fallback_images is not None:
        paths = dict(fallback_images)
    else:
        raise KeyError(f"{json_file}: missing field 'images' (needed to find the image files)")
    captions: dict[int, list[str]] = {}
    for i, ann in enumerate(anns):
        where = f"{json_file}: annotations[{i}]"
        image_id = int(_field(ann, "image_id", where))
        text = _field(ann, "caption", where)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: 'caption' must be a non-empty string, got {text!r}")
        if image_id not in paths:
            raise KeyError(f"{where}: image_id {image_id} has no entry in 'images'")
        captions.setdefault(image_id, []).append(text.strip())
    return [CaptionedImage(paths[k], tuple(v)) for k, v in sorted(captions.items())]


@dataclass
class DataFiles:
    """Resolved input files of a pretraining run (see the module docstring for defaults)."""

    train_json: Path
    train_image_roots: list[Path]
    val_json: Optional[Path]
    val_image_roots: list[Path]
    captions_json: Optional[Path]
    base: Optional[list[str]] = None
    novel: Optional[list[str]] = None


def resolve_data_files(
    data_dir: Optional[Union[str, Path]] = None,
    *,
    train_json: Optional[Union[str, Path]] = None,
    val_json: Optional[Union[str, Path]] = None,
    captions_json: Optional[Union[str, Path]] = None,
    split_json: Optional[Union[str, Path]] = None,
    image_root: Optional[Union[str, Path]] = None,
    val_image_root: Optional[Union[str, Path]] = None,
    novel: Optional[Sequence[str]] = None,
) -> DataFiles:
    """Find the training / validation / captions / split files of a data directory.

    Explicit paths win over the ``data_dir`` layout; an explicit path that does not exist is an
    error, a default one that does not exist is skipped (no validation, no captions, no split).
    """
    d = Path(data_dir) if data_dir is not None else None

    def _explicit(p: Optional[Union[str, Path]], what: str) -> Optional[Path]:
        if p is None:
            return None
        p = Path(p)
        if not p.is_file():
            raise FileNotFoundError(f"{what} not found: {p}")
        return p

    def _default(*names: str) -> Optional[Path]:
        if d is None:
            return None
        return next((d / n for n in names if (d / n).is_file()), None)

    train = _explicit(train_json, "training json") or _default("train_all.json", "train.json")
    if train is None:
        raise FileNotFoundError(
            f"no training json: expected {d}/train_all.json or {d}/train.json "
            "(or pass --train-json)"
        )
    val = _explicit(val_json, "validation json") or _default("val.json")
    caps = _explicit(captions_json, "captions json") or _default("captions_train.json")
    split = _explicit(split_json, "split json") or _default("split.json")

    def _roots(
        explicit: Optional[Union[str, Path]], split_name: str, json_path: Path
    ) -> list[Path]:
        if explicit is not None:
            return [Path(explicit)]
        base = d if d is not None else json_path.parent
        return [base / "images" / split_name, base / "images", base]

    base_names = novel_names = None
    if novel is not None:
        novel_names = list(novel)
    elif split is not None:
        s = _load_json(split)
        novel_names = [str(n) for n in _field(s, "novel", str(split))]
        base_names = [str(n) for n in s["base"]] if "base" in s else None
    return DataFiles(
        train_json=train,
        train_image_roots=_roots(image_root, "train", train),
        val_json=val,
        val_image_roots=_roots(val_image_root, "val", val) if val is not None else [],
        captions_json=caps,
        base=base_names,
        novel=novel_names,
    )


# --------------------------------------------------------------------------------------------
# Datasets


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


# --------------------------------------------------------------------------------------------
# Training


@dataclass
class PretrainConfig:
    """Hyper-parameters of :func:`pretrain_clip`; defaults fit ~2-5 CPU minutes on OV-Shapes.

    Attributes:
        objective: "itc" (InfoNCE) or "siglip" (pairwise sigmoid).
        epochs: passes over the crop pairs (an epoch draws ``n_crops / (1 - image_ratio)``
            pairs, so each crop is seen about once).
        batch_size: pairs per step.
        lr / weight_decay / warmup_steps / grad_clip: AdamW, linear warmup, cosine decay to 0,
            gradient-norm clip.
        image_size: model input resolution (default: the config's, 64).
        context_length: text context (default: the config's, 32).
        image_ratio: expected fraction of whole-image caption pairs per batch (0 without a
            captions json).
        max_steps: stop after this many steps (also sets the schedule length).
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", ...
        num_workers: DataLoader workers (default: half the cores, at most 4, at least 1).
        threads: torch CPU threads during the run (default: half the cores, at least 1, so
            that data-loading workers get the other half: on a shared 2-core machine two
            compute threads are up to 2-3x slower per step than one, as OpenMP threads wait
            on each other when one is descheduled); restored afterwards.
        eval_max_crops: cap on zero-shot evaluation crops (None: all).
        eval_scales: box enlargement factors whose normalised crop embeddings are summed
            (ViLD-image's 1.0x + 1.5x).
    """

    objective: str = "itc"
    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    grad_clip: float = 1.0
    image_size: Optional[int] = None
    context_length: Optional[int] = None
    image_ratio: float = 0.25
    crop_scale_range: tuple[float, float] = (1.0, 1.6)
    crop_shift: float = 0.1
    max_steps: Optional[int] = None
    seed: int = 0
    device: str = "auto"
    num_workers: Optional[int] = None
    threads: Optional[int] = None
    log_every: int = 20
    eval_max_crops: Optional[int] = None
    eval_scales: tuple[float, ...] = (1.0, 1.5)
    templates: tuple[str, ...] = field(default=CAPTION_TEMPLATES)


def _num_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _fused_adamw_ok(device: torch.device) -> bool:
    # The fused AdamW kernel (one pass over all parameters) exists for CUDA, and for CPU from
    # torch 2.4; it matters here because the 49408-token embedding is most of the parameters.
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    return device.type == "cuda" or (device.type == "cpu" and (major, minor) >= (2, 4))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # Like open_clip: no decay on gains/biases (1-d), norms and the logit scale/bias.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
        exclude = exclude or "logit_scale" in name
        (no_decay if exclude else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def _loss(clip: SmallCLIP, objective: str, images, tokens, ids) -> torch.Tensor:
    model = clip.model
    image_emb = model.encode_image(images, normalize=True)
    text_emb = model.encode_text(tokens, normalize=True)
    if objective == "itc":
        return itc_loss(image_emb, text_emb, model.logit_scale, positive_ids=ids)
    return siglip_loss(image_emb, text_emb, model.logit_scale, model.logit_bias, positive_ids=ids)


def evaluate_zero_shot(
    clip: SmallCLIP,
    json_file: Union[str, Path],
    image_roots: Sequence[Union[str, Path]],
    *,
    novel: Optional[Sequence[str]] = None,
    templates: Sequence[str] = CAPTION_TEMPLATES,
    scales: Sequence[float] = (1.0, 1.5),
    max_crops: Optional[int] = None,
    batch_size: int = 256,
    device: Union[str, torch.device] = "cpu",
    num_workers: int = 0,
) -> dict[str, Any]:
    """Zero-shot top-1 accuracy of ``clip`` on the ground-truth object crops of a COCO json.

    Each crop embedding is ``normalise(sum_s normalise(ImgEnc(crop at scale s)))``; all classes of
    the json compete (generalised setting); prompts are the ``templates`` ensemble.

    Args:
        clip: the model bundle (its ``preprocess`` and ``tokenizer`` are used).
        json_file: COCO instances json with the classes and boxes to classify.
        image_roots: candidate image folders (see :func:`read_coco_instances`).
        novel: novel class names (others are base).
        templates: prompt templates.
        scales: box enlargement factors.
        max_crops: evaluate the first ``max_crops`` crops only.
        batch_size: crops per forward.
        device: where to run.
        num_workers: DataLoader workers.

    Returns:
        :func:`ovdet.teacher.zero_shot.zero_shot_accuracy`'s dict.
    """
    data = read_coco_instances(json_file, image_roots)
    crops = data.crops[:max_crops] if max_crops is not None else data.crops
    if not crops:
        raise ValueError(f"{json_file}: no non-crowd boxes to evaluate zero-shot accuracy on")
    summed = None
    for scale in scales:
        ds = CropCaptionDataset(
            crops, data.classnames, clip.preprocess, clip.tokenizer, train=False, eval_scale=scale
        )
        loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
        emb = encode_images(clip.model, (b[0] for b in loader), device=device)
        summed = emb if summed is None else summed + emb
    image_emb = torch.nn.functional.normalize(summed, dim=-1)
    class_emb = class_text_embeddings(
        clip.model, clip.tokenizer, data.classnames, templates, device=device
    )
    labels = torch.tensor([c.label for c in crops])
    return zero_shot_accuracy(image_emb, labels, class_emb, data.classnames, novel=novel)


def pretrain_clip(
    files: DataFiles,
    out: Union[str, Path],
    cfg: Optional[PretrainConfig] = None,
    *,
    log: Optional[Callable[[str], None]] = None,
) -> dict[str, Any]:
    """Train a small CLIP on crop/caption pairs, evaluate it zero-shot and save it.

    Args:
        files: resolved inputs (:func:`resolve_data_files`).
        out: checkpoint path (``.pt`` or ``.safetensors``); the config json goes beside it.
        cfg: hyper-parameters.
        log: progress sink (default: stderr).

    Returns:
        Summary dict: ``objective``, ``config_name``, ``checkpoint``, ``config_json``,
        ``device``, ``steps``, ``batch_size``, ``num_crop_pairs``, ``num_image_pairs``,
        ``loss_first`` (first step), ``loss_last`` (mean of the last 10 steps),
        ``loss_history`` ([step, loss] every ``log_every`` steps), ``logit_scale``,
        ``zero_shot`` (accuracy dict or None without a validation json), ``num_classes``,
        ``train_time_s``, ``wall_time_s``, ``hparams`` (the config, templates left out).
    """
    cfg = cfg or PretrainConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if cfg.objective not in ("itc", "siglip"):
        raise ValueError(f"objective must be 'itc' or 'siglip', got {cfg.objective!r}")
    if not 0.0 <= cfg.image_ratio < 1.0:
        raise ValueError(f"image_ratio must be in [0, 1), got {cfg.image_ratio}")
    t_start = time.perf_counter()
    device = torch.device(resolve_device(cfg.device))
    cores = _num_cores()
    threads = cfg.threads or max(1, cores // 2)
    workers = cfg.num_workers if cfg.num_workers is not None else min(4, max(1, cores // 2))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(cfg.seed)
        name = SMALL_CLIP if cfg.objective == "itc" else SMALL_CLIP_SIGMOID
        clip = create_small_clip(
            name, image_size=cfg.image_size, context_length=cfg.context_length, device=device
        )

        train = read_coco_instances(files.train_json, files.train_image_roots)
        if not train.crops:
            raise ValueError(f"{files.train_json}: no non-crowd boxes to make crop pairs from")
        crop_ds = CropCaptionDataset(
            train.crops,
            train.classnames,
            clip.preprocess,
            clip.tokenizer,
            templates=cfg.templates,
            scale_range=cfg.crop_scale_range,
            shift=cfg.crop_shift,
        )
        records = []
        if files.captions_json is not None and cfg.image_ratio > 0:
            records = read_captions(
                files.captions_json, files.train_image_roots, fallback_images=train.images
            )
        ratio = cfg.image_ratio if records else 0.0
        datasets: list[Dataset] = [crop_ds]
        weights = [(1 - ratio) / len(crop_ds)] * len(crop_ds)
        if records:
            img_ds = ImageCaptionDataset(
                records, clip.preprocess, clip.tokenizer, id_offset=len(train.classnames)
            )
            datasets.append(img_ds)
            weights += [ratio / len(img_ds)] * len(img_ds)
        epoch_size = max(cfg.batch_size, int(round(len(crop_ds) / (1 - ratio))))
        steps_per_epoch = max(1, epoch_size // cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        if total < 1:
            raise ValueError(
                f"nothing to train: epochs={cfg.epochs}, max_steps={cfg.max_steps} give 0 steps"
            )
        generator = torch.Generator().manual_seed(cfg.seed)
        sampler = WeightedRandomSampler(
            weights, num_samples=total * cfg.batch_size, replacement=True, generator=generator
        )
        loader = DataLoader(
            ConcatDataset(datasets),
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=workers,
            drop_last=True,
            persistent_workers=False,
            generator=generator,
        )
        log(
            f"pretrain-clip: {len(crop_ds)} crop pairs ({len(train.classnames)} classes), "
            f"{len(records)} captioned images, ratio {ratio:.2f}; {total} steps of "
            f"{cfg.batch_size} on {device} ({threads} threads), objective {cfg.objective}"
        )

        model = clip.model
        model.train()
        optimizer = torch.optim.AdamW(
            _param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=_fused_adamw_ok(device)
        )
        warmup = min(cfg.warmup_steps, max(1, total // 5))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(warmup, total))
        losses: list[float] = []
        history: list[list[float]] = []
        t_train = time.perf_counter()
        for step, (images, tokens, ids) in enumerate(loader):
            images, tokens, ids = images.to(device), tokens.to(device), ids.to(device)
            loss = _loss(clip, cfg.objective, images, tokens, ids)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"pretrain-clip: loss became {loss.item()} at step {step}; lower --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            losses.append(loss.item())
            if step % cfg.log_every == 0 or step == total - 1:
                history.append([step, round(losses[-1], 5)])
                log(
                    f"  step {step + 1}/{total}  loss {losses[-1]:.4f}  "
                    f"lr {scheduler.get_last_lr()[0]:.2e}  "
                    f"scale {model.logit_scale.exp().item():.1f}  "
                    f"{time.perf_counter() - t_train:.0f}s"
                )
        train_time = time.perf_counter() - t_train
        model.eval()

        zero_shot = None
        if files.val_json is not None:
            zero_shot = evaluate_zero_shot(
                clip,
                files.val_json,
                files.val_image_roots,
                novel=files.novel,
                templates=cfg.templates,
                scales=cfg.eval_scales,
                max_crops=cfg.eval_max_crops,
                device=device,
                num_workers=workers,
            )
            log(
                "zero-shot top-1 on {} crops of {} classes (chance {:.3f}): all {} base {} "
                "novel {}".format(
                    zero_shot["num_all"],
                    zero_shot["num_classes"],
                    zero_shot["chance"],
                    *(_fmt(zero_shot[k]) for k in ("top1_all", "top1_base", "top1_novel")),
                )
            )
        ckpt, cfg_json = save_small_clip(clip, out)
        log(f"saved {ckpt} (+ {cfg_json})")
    finally:
        torch.set_num_threads(old_threads)
    tail = losses[-10:]
    return {
        "objective": cfg.objective,
        "config_name": clip.config_name,
        "checkpoint": str(ckpt),
        "config_json": str(cfg_json),
        "device": str(device),
        "steps": len(losses),
        "batch_size": cfg.batch_size,
        "num_crop_pairs": len(crop_ds),
        "num_image_pairs": len(records),
        "num_classes": len(train.classnames),
        "loss_first": losses[0] if losses else None,
        "loss_last": sum(tail) / len(tail) if tail else None,
        "loss_history": history,
        "logit_scale": model.logit_scale.exp().item(),
        "zero_shot": zero_shot,
        "train_time_s": round(train_time, 2),
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "hparams": {k: v for k, v in asdict(cfg).items() if k != "templates"},
    }


def _fmt(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# --------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    d = PretrainConfig()
    p = argparse.ArgumentParser(
        prog="ovdet pretrain-clip",
        description="Train a small CLIP teacher (ovdet-small-clip) on object crops with "
        "class-name captions and whole images with their captions; report zero-shot crop "
        "accuracy on the validation split and save an open_clip-loadable state_dict.",
    )
    p.add_argument("--data", help="data directory (train_all.json, val.json, captions, split)")
    p.add_argument("--out", required=True, help="checkpoint path (.pt or .safetensors)")
    p.add_argument("--objective", choices=("itc", "siglip"), default=d.objective)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip)
    p.add_argument("--image-size", type=int, default=None, help="model input size (default 64)")
    p.add_argument("--context-length", type=int, default=None, help="text context (default 32)")
    p.add_argument(
        "--image-ratio",
        type=float,
        default=d.image_ratio,
        help="fraction of whole-image caption pairs per batch",
    )
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--num-workers", type=int, default=None, help="default: half the cores")
    p.add_argument("--threads", type=int, default=None, help="torch threads (half the cores)")
    p.add_argument("--train-json", help="COCO json for crops (default DIR/train_all.json)")
    p.add_argument("--val-json", help="COCO json for zero-shot eval (default DIR/val.json)")
    p.add_argument("--captions", help="COCO captions json (default DIR/captions_train.json)")
    p.add_argument("--split", help="split json with 'novel' (and 'base') names")
    p.add_argument("--novel", help="comma-separated novel class names (overrides --split)")
    p.add_argument("--image-root", help="training image folder")
    p.add_argument("--val-image-root", help="validation image folder")
    p.add_argument("--eval-max-crops", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """``ovdet pretrain-clip``: see the module docstring and ``--help``."""
    args = _parser().parse_args(argv)
    if args.data is None and args.train_json is None:
        print("ovdet pretrain-clip: give --data DIR or --train-json FILE", file=sys.stderr)
        return 2
    novel = [n.strip() for n in args.novel.split(",") if n.strip()] if args.novel else None
    files = resolve_data_files(
        args.data,
        train_json=args.train_json,
        val_json=args.val_json,
        captions_json=args.captions,
        split_json=args.split,
        image_root=args.image_root,
        val_image_root=args.val_image_root,
        novel=novel,
    )
    cfg = PretrainConfig(
        objective=args.objective,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        grad_clip=args.grad_clip,
        image_size=args.image_size,
        context_length=args.context_length,
        image_ratio=args.image_ratio,
        max_steps=args.max_steps,
        seed=args.seed,
        device=args.device,
        num_workers=args.num_workers,
        threads=args.threads,
        eval_max_crops=args.eval_max_crops,
    )
    summary = pretrain_clip(files, args.out, cfg)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        zs = summary["zero_shot"]
        print(
            f"trained {summary['steps']} steps in {summary['train_time_s']:.1f}s: loss "
            f"{summary['loss_first']:.3f} -> {summary['loss_last']:.3f}; "
            f"saved {summary['checkpoint']}"
        )
        if zs is not None:
            print(
                f"zero-shot top-1 (chance {zs['chance']:.3f}): all {_fmt(zs['top1_all'])}, "
                f"base {_fmt(zs['top1_base'])}, novel {_fmt(zs['top1_novel'])}"
            )
    return 0
