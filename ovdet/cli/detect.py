"""``ovdet detect``: text-prompted detection on images, folders or globs.

    ovdet detect --vocab "red circle,blue star" --input photos/ --output out/
                                        the best shipped model (``ovdet models``)
    ovdet detect --model NAME|PATH [--vocab ...] --input ... --output ...
                                        a named model: shipped, a $OVDET_MODELS card, or a
                                        bundle folder / card file (default vocabulary: its
                                        classes)
    ovdet detect --config CFG --weights model.pth --vocab "cat,dog,traffic cone" \
        --input photos/ --output out/ [--score-thresh 0.3] [--batch-size 4] [--device cuda]
    ovdet detect ... --sam vit_b:sam_vit_b_01ec64.pth
                                        masks from SAM prompted with the detected boxes
                                        (TYPE:CHECKPOINT, TYPE vit_b | vit_l | vit_h | small,
                                        or the checkpoint alone: type inferred); docs/sam.md

Everything is checked before the first image (vocabulary, files, inputs, output folder,
whether the folder holds another run); results are journalled as images finish, so a run
killed at any point resumes with the same command; ``--overwrite`` starts over in a folder
that holds another run. The output files and their fields are described in
:mod:`ovdet.detect`; the library call is :func:`ovdet.detect.run_detect`.
"""

from __future__ import annotations

import argparse
import json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet detect", description="Text-prompted detection on images (resumable)."
    )
    p.add_argument(
        "--model",
        help="a named model (`ovdet models`) or a bundle folder / model card path; not with "
        "--config/--weights. With neither: the best shipped model",
    )
    p.add_argument("--config", help="LazyConfig .py file (trusted: executed), with --weights")
    p.add_argument("--weights", help="model checkpoint (.pth / .safetensors), with --config")
    vocab = p.add_mutually_exclusive_group()
    vocab.add_argument(
        "--vocab",
        help='class names, "cat,dog", or coco | lvis | ov-coco ...; default with a named '
        "model: its classes",
    )
    vocab.add_argument("--vocab-file", help="names file: one class name per line (or .json)")
    vocab.add_argument(
        "--embeddings",
        help="(C, D) class embeddings from `ovdet embed-text` (.npy/.pt/.safetensors); for a "
        "model without a text encoder",
    )
    p.add_argument(
        "--names-file", help="names of the --embeddings rows (default: its .names.txt sidecar)"
    )
    p.add_argument("--input", nargs="+", required=True, help="images, folders or glob patterns")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--score-thresh", type=float, default=0.3, help="in [0, 1]")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--no-vis", action="store_true", help="do not write visualisation PNGs")
    p.add_argument(
        "--sam",
        metavar="SPEC",
        help="masks from SAM prompted with the detections' boxes: a shipped SAM "
        "(ov-shapes-small-sam), TYPE:CHECKPOINT (TYPE vit_b, vit_l, vit_h or small) or a "
        "checkpoint path (type inferred from its shapes)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the outputs of another run in --output and start over",
    )
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ovdet.detect import run_detect

    summary = run_detect(
        config=args.config,
        weights=args.weights,
        model=args.model,
        inputs=args.input,
        output=args.output,
        vocab=args.vocab,
        vocab_file=args.vocab_file,
        embeddings=args.embeddings,
        names_file=args.names_file,
        overrides=args.opts or [],
        score_thresh=args.score_thresh,
        batch_size=args.batch_size,
        device=args.device,
        vis=not args.no_vis,
        sam=args.sam,
        overwrite=args.overwrite,
    )
    print(json.dumps(summary))
    return 1 if summary["images"] == 0 else 0
