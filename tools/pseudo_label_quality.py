#!/usr/bin/env python3
"""Precision and recall of pseudo-labels per teacher and score threshold; prints JSON.

    .venv/bin/python tools/pseudo_label_quality.py --images DATA/images/train \
        --gt DATA/train_all.json --models ov-shapes-vild-text,ov-shapes-rkd-ensemble \
        --limit 200 --out runs/pl_quality

Each model labels the first ``--limit`` images (sorted by name) with ``ovdet pseudo-label``
at the lowest threshold (resumable: a rerun reuses finished labels), then
:func:`ovdet.pseudo_label.quality.label_quality` scores the labels at every threshold against
the ground truth (all objects: base and novel), joined by file name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", required=True, help="folder of the images to label")
    p.add_argument("--gt", required=True, help="COCO json of those images with every object")
    p.add_argument("--models", default="ov-shapes-rkd-ensemble", help="named models, comma-sep")
    p.add_argument("--thresholds", default="0.1,0.3,0.5,0.7,0.9")
    p.add_argument("--limit", type=int, default=200, help="label the first N images")
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="folder for each model's pseudo-labels")
    args = p.parse_args(argv)

    from ovdet.pseudo_label import run_pseudo_label
    from ovdet.pseudo_label.quality import label_quality

    thresholds = [float(t) for t in args.thresholds.split(",")]
    images = sorted(Path(args.images).glob("*.png"))[: args.limit]
    report = {"images": len(images), "gt": args.gt, "iou": args.iou, "teachers": {}}
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        out = Path(args.out) / model
        start = time.perf_counter()
        summary = run_pseudo_label(
            output=out,
            inputs=[str(i) for i in images],
            model=model,
            score_thresh=min(thresholds),
            max_per_image=100,
            device=args.device,
            progress=False,
        )
        quality = label_quality(
            out / "pseudo_labels.json", args.gt, thresholds=thresholds, iou=args.iou
        )
        report["teachers"][model] = {
            "labelling_s": round(time.perf_counter() - start, 2),
            "images_per_s": summary.get("images_per_s"),
            **quality,
        }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
