"""Hyper-parameters of small-CLIP pretraining and its caption / prompt templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["CAPTION_TEMPLATES", "PretrainConfig"]

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


@dataclass
class PretrainConfig:
    """Hyper-parameters of :func:`~ovdet.teacher.pretrain.train.pretrain_clip`.

    The defaults fit ~2-5 CPU minutes on OV-Shapes.

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
