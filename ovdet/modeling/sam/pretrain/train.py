"""The small-SAM pretraining run: losses, optimiser and schedule, resumable epoch loop, outputs.

:func:`pretrain_sam` trains :func:`~ovdet.modeling.sam.build.build_small_sam` from a fixed seed
(the model's initialisation is the first draw of the seeded global generator; sample order and
box jitter are functions of (seed, epoch, index)), so a run resumed from its checkpoint ends
with the same weights as an uninterrupted one on the same machine and thread count.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ovdet.modeling.sam.build import build_small_sam
from ovdet.modeling.sam.pretrain.data import (
    SamData,
    SamMaskDataset,
    epoch_order,
    num_batches,
    read_masked_images,
)
from ovdet.modeling.sam.pretrain.evaluate import evaluate_box_miou
from ovdet.utils.device import resolve_device
from ovdet.utils.errors import InputError
from ovdet.utils.io import atomic_write, write_json

__all__ = [
    "CHECKPOINT",
    "WEIGHTS",
    "SamPretrainConfig",
    "dice_loss",
    "focal_loss",
    "pretrain_sam",
    "sam_losses",
]

CHECKPOINT = "checkpoint.pth"  # model + optimiser + schedule + epoch/step + RNG, each epoch
WEIGHTS = "sam_small.pth"  # the final plain state_dict
METRICS = "metrics.json"
# what a resumed run must share with the run it continues
_RESUME_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_steps", "max_boxes", "seed")


@dataclass
class SamPretrainConfig:
    """Hyper-parameters of :func:`pretrain_sam`.

    Attributes:
        epochs: passes over the training images.
        batch_size: images per step (each with up to ``max_boxes`` box prompts).
        lr / weight_decay / warmup_steps / grad_clip: AdamW, linear warmup then cosine decay
            to 0, gradient-norm clip (0: none).
        max_boxes: box prompts per image (drawn at random when it has more objects).
        focal_weight / dice_weight / iou_weight: the loss mix (SAM: focal 20 : dice 1, plus
            the IoU head's MSE).
        jitter / max_jitter_px: box noise std (fraction of the box side) and its cap.
        seed: model initialisation, sample order and box jitter.
        device: "auto", "cpu", "cuda", ...
        threads: torch CPU threads during the run (None: half the cores); restored after.
        stop_after_epochs: stop after this many epochs of this call (as if interrupted;
            ``resume`` continues); None: run to ``epochs``.
        log_every: steps between progress lines.
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    max_boxes: int = 8
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    jitter: float = 0.1
    max_jitter_px: float = 20.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    stop_after_epochs: int | None = None
    log_every: int = 20


# --------------------------------------------------------------------------------------------
# Losses


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha=0.25, gamma=2.0) -> torch.Tensor:
    """Sigmoid focal loss per mask (mean over its pixels): (N, h, w) -> (N,)."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(1).mean(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss per mask: (N, h, w) -> (N,)."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    return 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


def sam_losses(
    logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor, cfg: SamPretrainConfig
) -> dict[str, torch.Tensor]:
    """SAM's loss for (N, h, w) low-resolution logits, (N,) predicted IoUs and (N, h, w) {0, 1}
    targets: ``focal_weight`` x focal + ``dice_weight`` x dice + ``iou_weight`` x MSE of the
    IoU head against the IoU of the thresholded mask (no gradient through that IoU); each the
    mean over the masks."""
    focal = focal_loss(logits, target).mean()
    dice = dice_loss(logits, target).mean()
    with torch.no_grad():
        pred = (logits > 0).flatten(1)
        gt = target.flatten(1) > 0.5
        union = (pred | gt).sum(1).float()
        actual = torch.where(union > 0, (pred & gt).sum(1) / union.clamp(min=1), 1.0)
    iou = F.mse_loss(iou_pred, actual)
    total = cfg.focal_weight * focal + cfg.dice_weight * dice + cfg.iou_weight * iou
    return {"loss": total, "focal": focal, "dice": dice, "iou_mse": iou}


# --------------------------------------------------------------------------------------------
# The run


def _num_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return f


def _step(sam, batch: list[dict], cfg: SamPretrainConfig, device) -> dict[str, torch.Tensor]:
    """One batch: the encoder once over the images, each image's boxes batched through the
    prompt encoder and the mask decoder (``multimask_output=False``, as at inference)."""
    images = torch.cat([sam.preprocess(b["image"][None].to(device)) for b in batch])
    features = sam.image_encoder(images)
    image_pe = sam.prompt_encoder.get_dense_pe()
    logits, ious, targets = [], [], []
    for i, b in enumerate(batch):
        sparse, dense = sam.prompt_encoder(points=None, boxes=b["boxes"].to(device), masks=None)
        low_res, iou_pred = sam.mask_decoder(
            image_embeddings=features[i : i + 1],
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        logits.append(low_res[:, 0])
        ious.append(iou_pred[:, 0])
        targets.append(b["target"].to(device))
    return sam_losses(torch.cat(logits), torch.cat(ious), torch.cat(targets), cfg)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path: Path, sam, optimizer, scheduler, epoch, step, cfg, history) -> None:
    state = {
        "model": sam.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "step": step,
        "rng": _rng_state(),
        "config": asdict(cfg),
        "history": history,
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _load_checkpoint(path: Path, cfg: SamPretrainConfig) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"--resume: no checkpoint {path}; run without --resume to start training")
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state["config"]
    changed = [k for k in _RESUME_KEYS if saved.get(k) != getattr(cfg, k)]
    if changed:
        detail = ", ".join(f"{k} {saved.get(k)} -> {getattr(cfg, k)}" for k in changed)
        raise InputError(
            f"--resume {path}: the run was started with other settings ({detail}); give the "
            "same ones, or another --out to start afresh"
        )
    return state


def pretrain_sam(
    data: SamData,
    out: str | os.PathLike,
    cfg: SamPretrainConfig | None = None,
    *,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the small SAM on the base-class masks of ``data``, evaluate, save.

    Writes into ``out``: ``checkpoint.pth`` after every epoch (atomically), and when all
    epochs are done ``sam_small.pth`` (a plain state_dict of ``build_small_sam()``) and
    ``metrics.json`` (the returned summary).

    Args:
        data: :func:`~ovdet.modeling.sam.pretrain.data.resolve_sam_data`'s files.
        out: output folder.
        cfg: hyper-parameters.
        resume: continue from ``out/checkpoint.pth`` (same settings required).
        log: progress sink (default: stderr).

    Returns:
        Summary: ``finished`` (False when stopped by ``stop_after_epochs``), ``epochs_done``,
        ``steps``, ``num_train_images``, ``num_train_objects``, ``loss_first``, ``loss_last``,
        ``history``, and when finished ``weights``, ``checkpoint_bytes``, ``eval`` (trained)
        and ``eval_random`` (the untrained initialisation) -- each
        :func:`~ovdet.modeling.sam.pretrain.evaluate.mean_iou_by_split`'s dict or None without
        a validation json --, ``train_time_s``, ``hparams``.

    Raises:
        InputError: a dataset without masks or without base objects, an existing checkpoint
            without ``resume``, a missing or mismatching one with it.
    """
    cfg = cfg or SamPretrainConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise InputError(
            f"{ckpt_path} exists: pass --resume to continue that run, or give another --out"
        )
    state = _load_checkpoint(ckpt_path, cfg) if resume else None
    device = torch.device(resolve_device(cfg.device))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or max(1, _num_cores() // 2))
    try:
        return _run(data, out, cfg, state, device, log)
    finally:
        torch.set_num_threads(old_threads)


def _train_images(data: SamData, cfg: SamPretrainConfig):
    roots = [data.root / "images" / "train", data.root / "images", data.root]
    images = read_masked_images(data.train_json, roots, classes=data.base)
    if not images:
        raise InputError(
            f"{data.train_json}: no base-class objects with masks to train on"
            + (f" (base classes: {', '.join(data.base)})" if data.base else "")
        )
    return images


def _run(data, out, cfg, state, device, log) -> dict[str, Any]:
    images = _train_images(data, cfg)
    torch.manual_seed(cfg.seed)
    sam = build_small_sam().to(device)
    dataset = SamMaskDataset(
        images, sam.image_encoder.img_size, max_boxes=cfg.max_boxes, seed=cfg.seed,
        jitter=cfg.jitter, max_jitter_px=cfg.max_jitter_px,
    )  # fmt: skip
    steps_per_epoch = num_batches(len(dataset), cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(sam.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = min(cfg.warmup_steps, max(1, total // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(warmup, total))
    start_epoch, step, history = 0, 0, []
    if state is not None:
        sam.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step, history = state["epoch"], state["step"], list(state["history"])
        _set_rng_state(state["rng"])
        log(f"pretrain-sam: resumed from {out / CHECKPOINT} after epoch {start_epoch}")
    n_obj = sum(len(r.boxes) for r in images)
    log(
        f"pretrain-sam: {len(images)} images, {n_obj} base objects; {total} steps of "
        f"{cfg.batch_size} images on {device} ({torch.get_num_threads()} threads)"
    )
    t0 = time.perf_counter()
    end_epoch = cfg.epochs
    if cfg.stop_after_epochs is not None:
        end_epoch = min(end_epoch, start_epoch + cfg.stop_after_epochs)
    sam.train()
    for epoch in range(start_epoch, end_epoch):
        dataset.set_epoch(epoch)
        order = epoch_order(len(dataset), cfg.seed, epoch)
        for k in range(steps_per_epoch):
            batch = [dataset[i] for i in order[k * cfg.batch_size : (k + 1) * cfg.batch_size]]
            losses = _step(sam, batch, cfg, device)
            if not torch.isfinite(losses["loss"]):
                raise FloatingPointError(
                    f"pretrain-sam: loss is {losses['loss'].item()}; lower --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(sam.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % cfg.log_every == 0 or step == 1 or k == steps_per_epoch - 1:
                row = {"step": step, "epoch": epoch + 1}
                row.update({k2: round(v.item(), 5) for k2, v in losses.items()})
                history.append(row)
                log(
                    f"  step {step}/{total} epoch {epoch + 1}  loss {row['loss']:.4f} (focal "
                    f"{row['focal']:.4f} dice {row['dice']:.4f} iou {row['iou_mse']:.4f})  "
                    f"lr {scheduler.get_last_lr()[0]:.2e}  {time.perf_counter() - t0:.0f}s"
                )
        _save_checkpoint(out / CHECKPOINT, sam, optimizer, scheduler, epoch + 1, step, cfg, history)
    train_time = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "finished": end_epoch == cfg.epochs,
        "epochs_done": end_epoch,
        "steps": step,
        "num_train_images": len(images),
        "num_train_objects": n_obj,
        "loss_first": history[0]["loss"] if history else None,
        "loss_last": history[-1]["loss"] if history else None,
        "history": history,
        "train_time_s": round(train_time, 2),
        "hparams": asdict(cfg),
    }
    if not summary["finished"]:
        log(f"pretrain-sam: stopped after epoch {end_epoch}; --resume continues")
        return summary
    sam.eval()
    weights = atomic_write(out / WEIGHTS, lambda tmp: torch.save(sam.cpu().state_dict(), tmp))
    summary["weights"] = str(weights)
    summary["checkpoint_bytes"] = weights.stat().st_size
    summary.update(_evaluate(sam, data, cfg, device, log))
    write_json(out / METRICS, summary, indent=2)
    log(f"saved {weights} ({summary['checkpoint_bytes']} bytes) and {out / METRICS}")
    return summary


def _evaluate(sam, data: SamData, cfg, device, log) -> dict[str, Any]:
    """mIoU of the trained and of the untrained (same seed) SAM on the validation json."""
    if data.val_json is None:
        return {"eval": None, "eval_random": None}
    roots = [data.root / "images" / "val", data.root / "images", data.root]
    val = read_masked_images(data.val_json, roots)
    t0 = time.perf_counter()
    trained = evaluate_box_miou(sam, val, data.novel, device=device)
    torch.manual_seed(cfg.seed)
    random = evaluate_box_miou(build_small_sam(), val, data.novel, device=device)
    for name, r in (("trained", trained), ("random", random)):
        log(
            f"  {name} SAM, mIoU from GT boxes on {len(val)} val images: base "
            f"{r['miou_base']} ({r['num_base']}), novel {r['miou_novel']} ({r['num_novel']})"
        )
    return {
        "eval": trained,
        "eval_random": random,
        "eval_time_s": round(time.perf_counter() - t0, 2),
    }
