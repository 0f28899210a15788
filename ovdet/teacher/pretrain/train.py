"""The small-CLIP pretraining run: data, optimiser and schedule, step loop, evaluation, summary.

:func:`pretrain_clip` trains :mod:`ovdet.teacher.small_clip` from a fixed seed; the order of
the random draws (model initialisation, then the sampler's generator) is part of its contract,
since the OV-Shapes benchmark's teacher must train to the same weights.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from ovdet.teacher.clip_losses import MAX_LOGIT_SCALE, itc_loss, siglip_loss
from ovdet.teacher.pretrain.config import PretrainConfig
from ovdet.teacher.pretrain.datasets import CropCaptionDataset, ImageCaptionDataset
from ovdet.teacher.pretrain.evaluate import evaluate_zero_shot, format_accuracy
from ovdet.teacher.pretrain.files import (
    CaptionedImage,
    DataFiles,
    read_captions,
    read_coco_instances,
)
from ovdet.teacher.small_clip import (
    SMALL_CLIP,
    SMALL_CLIP_SIGMOID,
    SmallCLIP,
    create_small_clip,
    save_small_clip,
)
from ovdet.utils.device import resolve_device

__all__ = ["pretrain_clip"]


def pretrain_clip(
    files: DataFiles,
    out: Union[str, Path],
    cfg: Optional[PretrainConfig] = None,
    *,
    log: Optional[Callable[[str], None]] = None,
) -> dict[str, Any]:
    """Train a small CLIP on crop/caption pairs, evaluate it zero-shot and save it.

    Args:
        files: resolved inputs (:func:`~ovdet.teacher.pretrain.files.resolve_data_files`).
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
        # the model's initialisation is the first draw from the seeded global generator
        torch.manual_seed(cfg.seed)
        name = SMALL_CLIP if cfg.objective == "itc" else SMALL_CLIP_SIGMOID
        clip = create_small_clip(
            name, image_size=cfg.image_size, context_length=cfg.context_length, device=device
        )
        data = _build_data(files, cfg, clip, workers)
        log(
            f"pretrain-clip: {len(data.crop_dataset)} crop pairs ({len(data.classnames)} "
            f"classes), {len(data.records)} captioned images, ratio {data.ratio:.2f}; "
            f"{data.total} steps of {cfg.batch_size} on {device} ({threads} threads), objective "
            f"{cfg.objective}"
        )
        clip.model.train()
        optimizer, scheduler = _build_optimizer(clip.model, cfg, device, data.total)
        run = _train_steps(clip, data, optimizer, scheduler, cfg, device, log)
        clip.model.eval()
        zero_shot = None
        if files.val_json is not None:
            zero_shot = _evaluate(clip, files, cfg, device, workers, log)
        ckpt, cfg_json = save_small_clip(clip, out)
        log(f"saved {ckpt} (+ {cfg_json})")
    finally:
        torch.set_num_threads(old_threads)
    return _summary(
        clip, cfg, data, run, zero_shot, ckpt, cfg_json, device, time.perf_counter() - t_start
    )


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class _TrainData:
    """What :func:`_build_data` makes: the datasets, their mix and the loader of all steps."""

    crop_dataset: CropCaptionDataset
    records: list[CaptionedImage]
    classnames: list[str]
    ratio: float
    total: int
    loader: DataLoader


def _build_data(files: DataFiles, cfg: PretrainConfig, clip: SmallCLIP, workers: int) -> _TrainData:
    """Crop pairs (+ caption pairs, mixed at ``cfg.image_ratio``) and a seeded loader."""
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
    return _TrainData(crop_ds, records, train.classnames, ratio, total, loader)


# --------------------------------------------------------------------------------------------
# Optimiser and schedule


def _build_optimizer(
    model: nn.Module, cfg: PretrainConfig, device: torch.device, total: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no decay on gains, biases, logit scale/bias), linear warmup then cosine decay."""
    optimizer = torch.optim.AdamW(
        _param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=_fused_adamw_ok(device)
    )
    warmup = min(cfg.warmup_steps, max(1, total // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(warmup, total))
    return optimizer, scheduler


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


# --------------------------------------------------------------------------------------------
# Step loop, evaluation, summary


@dataclass
class _Run:
    """What :func:`_train_steps` records."""

    losses: list[float]
    history: list[list[float]]
    train_time: float


def _train_steps(
    clip: SmallCLIP,
    data: _TrainData,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    cfg: PretrainConfig,
    device: torch.device,
    log: Callable[[str], None],
) -> _Run:
    """Every step of ``data.loader``: loss, clipped gradient step, logit-scale clamp, logs."""
    model = clip.model
    total = data.total
    losses: list[float] = []
    history: list[list[float]] = []
    t_train = time.perf_counter()
    for step, (images, tokens, ids) in enumerate(data.loader):
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
    return _Run(losses, history, time.perf_counter() - t_train)


def _evaluate(
    clip: SmallCLIP,
    files: DataFiles,
    cfg: PretrainConfig,
    device: torch.device,
    workers: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Zero-shot accuracy on the validation json, logged."""
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
        "zero-shot top-1 on {} crops of {} classes (chance {:.3f}): all {} base {} novel {}".format(
            zero_shot["num_all"],
            zero_shot["num_classes"],
            zero_shot["chance"],
            *(format_accuracy(zero_shot[k]) for k in ("top1_all", "top1_base", "top1_novel")),
        )
    )
    return zero_shot


def _summary(
    clip: SmallCLIP,
    cfg: PretrainConfig,
    data: _TrainData,
    run: _Run,
    zero_shot: Optional[dict[str, Any]],
    ckpt: Path,
    cfg_json: Path,
    device: torch.device,
    wall_time: float,
) -> dict[str, Any]:
    """The summary dict of :func:`pretrain_clip` (keys listed there)."""
    losses = run.losses
    tail = losses[-10:]
    return {
        "objective": cfg.objective,
        "config_name": clip.config_name,
        "checkpoint": str(ckpt),
        "config_json": str(cfg_json),
        "device": str(device),
        "steps": len(losses),
        "batch_size": cfg.batch_size,
        "num_crop_pairs": len(data.crop_dataset),
        "num_image_pairs": len(data.records),
        "num_classes": len(data.classnames),
        "loss_first": losses[0] if losses else None,
        "loss_last": sum(tail) / len(tail) if tail else None,
        "loss_history": run.history,
        "logit_scale": clip.model.logit_scale.exp().item(),
        "zero_shot": zero_shot,
        "train_time_s": round(run.train_time, 2),
        "wall_time_s": round(wall_time, 2),
        "hparams": {k: v for k, v in asdict(cfg).items() if k != "templates"},
    }
