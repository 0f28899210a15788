"""``ovdet detect``: text-prompted detection on images, folders or globs.

    ovdet detect --config CFG --weights model.pth --vocab "cat,dog,traffic cone" \
        --input photos/ --output out/ [--score-thresh 0.3] [--batch-size 4] [--device cuda]

Writes into ``--output``:

* ``results.json``: COCO results format, a list of ``{"image_id", "category_id", "bbox"
  (XYWH), "score"[, "segmentation" (RLE)]}``;
* ``detections.json``: a COCO dataset (``images``, ``categories`` = the vocabulary with ids
  1..C, ``annotations`` = the detections with scores), loadable by pycocotools;
* ``vis/<image stem>.png``: the detections drawn on each image (unless ``--no-vis``);
* ``errors.json``: the images that could not be read, with the reason.

An unreadable image is reported and skipped; the others are still processed and written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet detect", description="Text-prompted detection on images."
    )
    p.add_argument("--config", required=True, help="LazyConfig .py file (trusted: executed)")
    p.add_argument("--weights", default=None, help="model checkpoint (.pth)")
    vocab = p.add_mutually_exclusive_group(required=True)
    vocab.add_argument("--vocab", help='class names, "cat,dog", or coco | lvis | ov-coco')
    vocab.add_argument("--vocab-file", help="text file with one class name per line")
    vocab.add_argument(
        "--embeddings", help="precomputed (C, D) class embeddings (.npy/.pt) + --names-file"
    )
    p.add_argument("--names-file", help="names of the --embeddings rows, one per line")
    p.add_argument("--input", nargs="+", required=True, help="images, folders or glob patterns")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--score-thresh", type=float, default=0.3)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default=None, help="cuda | cpu (default: cuda when present)")
    p.add_argument("--no-vis", action="store_true", help="do not write visualisation PNGs")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def _set_vocabulary(predictor, args) -> list[str]:
    from ovdet.text import load_class_embeddings, resolve_vocabulary

    if args.embeddings:
        if not args.names_file:
            raise SystemExit("ovdet detect: --embeddings needs --names-file naming its rows")
        names = resolve_vocabulary(args.names_file)
        emb = load_class_embeddings(args.embeddings, vocabulary=names)
        predictor.set_vocabulary(emb, names=names)
        return names
    names = resolve_vocabulary(args.vocab if args.vocab else args.vocab_file)
    predictor.set_vocabulary(names)
    return names


def run_detection(predictor, images: list[Path], names: list[str], args) -> dict[str, Any]:
    """Detect on ``images`` in batches; returns the summary written by :func:`main`."""
    from tqdm import tqdm

    from ovdet.evaluation.results import detections_to_coco_results
    from ovdet.utils.image import ImageReadError, load_image
    from ovdet.utils.io import write_json
    from ovdet.utils.visualize import draw_detections

    out_dir = Path(args.output)
    vis_dir = out_dir / "vis"
    if not args.no_vis:
        vis_dir.mkdir(parents=True, exist_ok=True)
    coco_images, results, errors = [], [], []
    batch: list[tuple[int, Path, np.ndarray]] = []
    category_ids = list(range(1, len(names) + 1))  # vocabulary row i -> category id i + 1

    def flush() -> None:
        if not batch:
            return
        outs = predictor.predict_batch([arr for _, _, arr in batch], score_thresh=args.score_thresh)
        for (image_id, path, arr), out in zip(batch, outs):
            results.extend(
                detections_to_coco_results(
                    image_id,
                    out["boxes"],
                    out["scores"],
                    out["labels"],
                    category_ids,
                    out.get("masks"),
                )
            )
            if not args.no_vis:
                vis = draw_detections(
                    arr,
                    out["boxes"],
                    out["labels"],
                    out["class_names"],
                    out["scores"],
                    out.get("masks"),
                )
                vis.save(vis_dir / f"{image_id:06d}_{path.stem}.png")
        batch.clear()

    for image_id, path in enumerate(tqdm(images, desc="detect", unit="img"), start=1):
        try:
            arr = load_image(path)
        except ImageReadError as exc:
            print(f"ovdet detect: skipping {path}: {exc}", file=sys.stderr)
            errors.append({"file": str(path), "error": str(exc)})
            continue
        coco_images.append(
            {"id": image_id, "file_name": str(path), "height": arr.shape[0], "width": arr.shape[1]}
        )
        batch.append((image_id, path, arr))
        if len(batch) >= args.batch_size:
            flush()
    flush()

    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    annotations = [
        dict(r, id=i + 1, area=r["bbox"][2] * r["bbox"][3], iscrowd=0)
        for i, r in enumerate(results)
    ]
    write_json(out_dir / "results.json", results, newline=False)
    write_json(
        out_dir / "detections.json",
        {"images": coco_images, "categories": categories, "annotations": annotations},
        newline=False,
    )
    write_json(out_dir / "errors.json", errors, newline=False)
    return {
        "images": len(coco_images),
        "failed": len(errors),
        "detections": len(results),
        "output": str(out_dir),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ovdet.predictor import OVPredictor
    from ovdet.utils.image import list_images

    images = list_images(args.input)
    if not images:
        print("ovdet detect: no images found in --input", file=sys.stderr)
        return 2
    Path(args.output).mkdir(parents=True, exist_ok=True)
    predictor = OVPredictor.from_config(
        args.config,
        args.weights,
        overrides=args.opts or [],
        device=args.device,
        score_thresh=args.score_thresh,
    )
    names = _set_vocabulary(predictor, args)
    summary = run_detection(predictor, images, names, args)
    print(json.dumps(summary))
    return 1 if summary["images"] == 0 else 0
