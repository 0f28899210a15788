"""``ovdet demo``: text-prompted open-vocabulary detection on fresh OV-Shapes images.

    ovdet demo [--out output/demo] [--num-images 6] [--seed 1] [--vocab "red circle,blue star"]
        [--device auto] [--score-thresh 0.05] [--show-thresh 0.3] [--model NAME|DIR] [--json]

Runs :func:`ovdet.demo.run_demo` (by default the best shipped model, a small teacher's text
tower + an RKD-ensemble detector; ``--model`` takes another OV-Shapes bundle by name or
folder; no training) and prints a short table with the model's measured metrics, or the
summary as JSON with ``--json``. Writes into
``--out``: ``vis/*.png`` (ground truth | detections, side by side), ``results.json``,
``ground_truth.json`` and ``metrics.json`` (box AP50 over all / base / novel classes).
``--vocab`` detects other names (encoded by the teacher's text tower); classes of the images
left out of the vocabulary count as missed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "format_table", "main"]


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def format_table(summary: dict[str, Any], show_thresh: float, max_listed: int = 6) -> str:
    """The short table printed by ``ovdet demo``.

    Args:
        summary: what :func:`ovdet.demo.run_demo` returns.
        show_thresh: the score threshold of the listed detections (shown in the header).
        max_listed: detections listed per image; the rest are counted.
    """
    vocab, novel = summary["vocabulary"], summary["novel"]
    lines = [
        f"ovdet demo: {len(summary['images'])} new OV-Shapes images (seed {summary['seed']}), "
        f"vocabulary of {len(vocab)} classes, {len(novel)} of them novel (marked *): the "
        "detector never saw a box of a novel class",
        "",
        f"{'image':<12} {'objects':>7}  detections (score >= {show_thresh:.2f})",
    ]
    for img in summary["images"]:
        dets = ", ".join(
            f"{'*' if d['novel'] else ''}{d['name']} {d['score']:.2f}"
            for d in img["detections"][:max_listed]
        )
        if len(img["detections"]) > max_listed:
            dets += f", ... ({len(img['detections'])} in all)"
        name = Path(img["file"]).name
        lines.append(f"{name:<12} {img['objects']:>7}  {dets or '-'}")
    m = summary["metrics"]

    def ap(key: str) -> str:
        value = m.get(key)
        return "n/a" if value is None or not math.isfinite(value) else f"{value:.1f}"

    model = summary.get("model")
    if model:
        measured = model.get("metrics") or {}

        def ap_of(key: str) -> str:
            value = measured.get(key)
            return "n/a" if value is None else f"{value:.1f}"

        lines += [
            "",
            f"model: {model['name']}: {model['description']}",
            f"  box AP50 measured on its training run's val split (as shipped): base "
            f"{ap_of('AP50_base')}  novel* {ap_of('AP50_novel')}",
        ]
    sam = summary.get("sam")
    if sam:
        lines.append(f"masks: SAM {sam['spec']} ({sam['type']}) prompted with the boxes")
    lines += [
        "",
        f"box AP50 on these images: all {ap('AP50')}  base {ap('AP50_base')}  "
        f"novel* {ap('AP50_novel')}",
        f"wrote {summary['outputs']['vis']}/*.png (ground truth | prediction), "
        f"{summary['outputs']['results']}, {summary['outputs']['ground_truth']}, "
        f"{summary['outputs']['metrics']} ({summary['time_s']:.1f}s)",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The options of ``ovdet demo`` (the keyword arguments of :func:`ovdet.demo.run_demo`)."""
    p = argparse.ArgumentParser(
        prog="ovdet demo",
        description="Open-vocabulary detection on new OV-Shapes images with the best shipped "
        "model (a small teacher's text tower + an RKD-ensemble detector; no training): ground "
        "truth | prediction PNGs, COCO results json, AP50 on base and novel classes.",
    )
    p.add_argument("--out", default="output/demo", help="output folder (output/demo)")
    p.add_argument("--num-images", type=int, default=6, help="generated images (6)")
    p.add_argument("--seed", type=int, default=1, help="image seed (1; training used 0)")
    p.add_argument("--vocab", type=_names, default=None, help="comma-separated class names")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--score-thresh", type=float, default=0.05, help="kept in results (0.05)")
    p.add_argument("--show-thresh", type=float, default=0.3, help="drawn and printed (0.3)")
    p.add_argument(
        "--model",
        default=None,
        help="an OV-Shapes bundle: a name (`ovdet models`) or a bundle folder (default: the "
        "best shipped model)",
    )
    p.add_argument(
        "--sam",
        metavar="SPEC",
        default=None,
        help="draw masks from SAM prompted with the boxes: ov-shapes-small-sam (shipped) or "
        "TYPE:CHECKPOINT (docs/sam.md)",
    )
    p.add_argument("--assets", dest="model", help=argparse.SUPPRESS)  # its former name
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """``ovdet demo``: see the module docstring and ``--help``."""
    args = build_parser().parse_args(argv)
    from ovdet.demo import run_demo  # torch and detectron2: not needed for --help

    summary = run_demo(
        args.out,
        num_images=args.num_images,
        seed=args.seed,
        vocabulary=args.vocab,
        device=args.device,
        score_thresh=args.score_thresh,
        show_thresh=args.show_thresh,
        model=args.model,
        sam=args.sam,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary, args.show_thresh))
    sys.stdout.flush()
    return 0
