"""Zero-shot top-1 accuracy of a small CLIP on the ground-truth object crops of a COCO json."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch.utils.data import DataLoader

from ovdet.teacher.pretrain.config import CAPTION_TEMPLATES
from ovdet.teacher.pretrain.datasets import CropCaptionDataset
from ovdet.teacher.pretrain.files import read_coco_instances
from ovdet.teacher.small_clip import SmallCLIP
from ovdet.teacher.zero_shot import encode_images, zero_shot_accuracy
from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings

__all__ = ["evaluate_zero_shot", "format_accuracy"]


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
    the json compete (generalised setting); prompts are the ``templates`` ensemble, encoded by
    :func:`ovdet.text.build_class_embeddings` with the model's own text tower (the model's
    train/eval mode is left as it was).

    Args:
        clip: the model bundle (its ``preprocess`` and ``tokenizer`` are used).
        json_file: COCO instances json with the classes and boxes to classify.
        image_roots: candidate image folders (see
            :func:`~ovdet.teacher.pretrain.files.read_coco_instances`).
        novel: novel class names (others are base).
        templates: prompt templates.
        scales: box enlargement factors.
        max_crops: evaluate the first ``max_crops`` crops only.
        batch_size: crops per forward.
        device: where to run the image tower (the model must be there); the text tower runs
            where the model is.
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
    # the encoder lends the model (no copy, no move); encode() restores its train/eval mode
    text_encoder = OpenCLIPTextEncoder(clip.config_name, model=clip.model, tokenizer=clip.tokenizer)
    class_emb = build_class_embeddings(text_encoder, data.classnames, templates)
    labels = torch.tensor([c.label for c in crops])
    return zero_shot_accuracy(image_emb, labels, class_emb, data.classnames, novel=novel)


def format_accuracy(x: Optional[float]) -> str:
    """An accuracy of :func:`evaluate_zero_shot`'s dict for logs: ``"0.812"``, or ``"n/a"``."""
    return "n/a" if x is None else f"{x:.3f}"
