"""``ovdet pretrain-clip``: train a small CLIP teacher on (image, caption) pairs.

``ovdet pretrain-clip --data DIR --out teacher.pt`` runs
:func:`ovdet.teacher.pretrain.pretrain_clip` (the data layout, objectives and outputs are
described in :mod:`ovdet.teacher.pretrain`) and prints its summary (``--json``: the whole
summary dict as JSON on stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from ovdet.teacher.pretrain import (
    PretrainConfig,
    format_accuracy,
    pretrain_clip,
    resolve_data_files,
)

__all__ = ["main"]


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
            top1 = {k: format_accuracy(zs[f"top1_{k}"]) for k in ("all", "base", "novel")}
            print(
                f"zero-shot top-1 (chance {zs['chance']:.3f}): all {top1['all']}, "
                f"base {top1['base']}, novel {top1['novel']}"
            )
    return 0
