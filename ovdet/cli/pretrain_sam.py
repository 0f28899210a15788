"""``ovdet pretrain-sam``: train the small SAM on the base-class instance masks of a dataset.

``ovdet pretrain-sam --data DIR --out RUN`` runs
:func:`ovdet.modeling.sam.pretrain.pretrain_sam` (data layout, losses and outputs are described
in :mod:`ovdet.modeling.sam.pretrain`): ``RUN/checkpoint.pth`` each epoch (``--resume``
continues it), then ``RUN/sam_small.pth`` (``--sam small:RUN/sam_small.pth``) and
``RUN/metrics.json``; prints the base / novel mIoU from ground-truth boxes (``--json``: the
whole summary).
"""

from __future__ import annotations

import argparse
import json

from ovdet.modeling.sam.pretrain import SamPretrainConfig, pretrain_sam, resolve_sam_data

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    d = SamPretrainConfig()
    p = argparse.ArgumentParser(
        prog="ovdet pretrain-sam",
        description="Train the small SAM (build_small_sam) on the base-class instance masks "
        "of a COCO-format dataset (OV-Shapes: `ovdet data ov-shapes`) with jittered box "
        "prompts; report the mIoU of its masks from ground-truth boxes on the validation "
        "objects, base and novel classes apart, against the untrained SAM.",
    )
    p.add_argument("--data", required=True, help="dataset folder (train_base.json, val.json, "
                   "split.json, images/)")  # fmt: skip
    p.add_argument("--out", required=True, help="run folder (checkpoint, weights, metrics)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--max-boxes", type=int, default=d.max_boxes, help="box prompts per image")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch threads (half the cores)")
    p.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pth")
    p.add_argument(
        "--stop-after-epochs",
        type=int,
        default=None,
        help="stop after this many epochs of this call (--resume continues)",
    )
    p.add_argument("--train-json", help="training json (default DIR/train_base.json)")
    p.add_argument("--val-json", help="validation json (default DIR/val.json)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """``ovdet pretrain-sam``: see the module docstring and ``--help``."""
    args = _parser().parse_args(argv)
    for name in ("epochs", "batch_size", "max_boxes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    data = resolve_sam_data(args.data, train_json=args.train_json, val_json=args.val_json)
    cfg = SamPretrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        max_boxes=args.max_boxes,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        stop_after_epochs=args.stop_after_epochs,
    )
    summary = pretrain_sam(data, args.out, cfg, resume=args.resume)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"trained {summary['epochs_done']} epochs ({summary['steps']} steps) in "
        f"{summary['train_time_s']:.1f}s: loss {summary['loss_first']} -> {summary['loss_last']}"
    )
    if not summary["finished"]:
        print(f"stopped early; continue with --resume --out {args.out}")
        return 0
    print(f"saved {summary['weights']} ({summary['checkpoint_bytes']} bytes)")
    for key, label in (("eval", "trained"), ("eval_random", "random")):
        r = summary.get(key)
        if r is not None:
            print(
                f"{label} SAM mIoU from GT boxes: base {r['miou_base']} ({r['num_base']} "
                f"objects), novel {r['miou_novel']} ({r['num_novel']} objects)"
            )
    return 0
