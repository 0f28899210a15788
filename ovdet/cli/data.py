"""``ovdet data``: generate and check datasets.

    ovdet data ov-shapes --out datasets/ov_shapes --num-train 2000 --num-val 500 --seed 0
    ovdet data check instances_train.json --images train/ [--decode] [--json]

``check`` validates a COCO instances json (and its images) before training
(:mod:`ovdet.data.check`): it prints errors and warnings with counts and the first offending
entries, and exits with 1 when there are errors (0 otherwise; 2 when the file is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ovdet.data.synthetic.attributes import COLOURS, SHAPES
from ovdet.data.synthetic.config import OVShapesConfig
from ovdet.data.synthetic.dataset import generate_ov_shapes


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovdet data", description="Generate datasets (ov-shapes) or check one (check)."
    )
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="{ov-shapes,check}")
    c = sub.add_parser(
        "check",
        help="validate a COCO instances json (and its images) before training",
        description="Validate a COCO instances json: structure and types, ids (duplicates, "
        "references), boxes, areas, segmentations, iscrowd, categories used, and with "
        "--images the image files. Prints what to fix; exits with 1 when there are errors.",
    )
    c.add_argument("json_file", metavar="GT.json", help="COCO instances json")
    c.add_argument("--images", help="image folder the json's file_name are relative to")
    c.add_argument(
        "--decode",
        action="store_true",
        help="decode every image and compare its size with height/width (slow; default: only "
        "check that the files exist)",
    )
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument(
        "--examples", type=int, default=5, help="offending entries shown per problem (5)"
    )
    p = sub.add_parser(
        "ov-shapes",
        help="synthetic open-vocabulary shapes (colour x shape classes, base/novel split)",
        description="Generate OV-Shapes: COCO json (train_all, train_base, val), captions, "
        "images and split.json under --out.",
    )
    d = OVShapesConfig()
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-train", type=int, default=2000, help="training images (2000)")
    p.add_argument("--num-val", type=int, default=500, help="validation images (500)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (0)")
    p.add_argument("--image-size", type=int, default=d.image_size[0], help="square side (256)")
    p.add_argument("--textures", action="store_true", help="add plain/striped/dotted (3x classes)")
    p.add_argument("--min-objects", type=int, default=d.min_objects)
    p.add_argument("--max-objects", type=int, default=d.max_objects)
    p.add_argument(
        "--colours",
        type=_names,
        default=d.colours,
        help=f"comma-separated, from {','.join(COLOURS)} (default {','.join(d.colours)})",
    )
    p.add_argument(
        "--shapes",
        type=_names,
        default=d.shapes,
        help=f"comma-separated, from {','.join(SHAPES)} (default {','.join(d.shapes)})",
    )
    p.add_argument("--novel-fraction", type=float, default=d.novel_fraction)
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the split (0)")
    p.add_argument("--captions-per-image", type=int, default=d.captions_per_image)
    p.add_argument("--workers", type=int, default=1, help="generator processes (1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def check_main(args: argparse.Namespace) -> int:
    """``ovdet data check``: 0 without errors, 1 with errors."""
    from ovdet.data.check import check_coco_dataset

    mode = "none" if args.images is None else ("decode" if args.decode else "exist")
    if args.decode and args.images is None:
        raise ValueError("--decode needs --images (the folder of the images)")
    report = check_coco_dataset(args.json_file, args.images, images=mode)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format(max_examples=max(0, args.examples)))
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dataset == "check":
        return check_main(args)
    try:
        config = OVShapesConfig(
            image_size=args.image_size,
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            colours=args.colours,
            shapes=args.shapes,
            textures=args.textures,
            novel_fraction=args.novel_fraction,
            split_seed=args.split_seed,
            captions_per_image=args.captions_per_image,
        )
    except ValueError as e:
        print(f"ovdet data ov-shapes: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    s = generate_ov_shapes(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        config=config,
        workers=args.workers,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    total = s["train"]["images"] + s["val"]["images"]
    tr, va = s["train"], s["val"]
    rate = total / max(seconds, 1e-9)
    print(f"OV-Shapes written to {s['out']} in {seconds:.1f}s ({rate:.0f} img/s)")
    print(f"  classes: {s['num_classes']} ({s['num_base']} base, {s['num_novel']} novel)")
    print(
        f"  train: {tr['images']} images, {tr['annotations_all']} annotations "
        f"({tr['annotations_base']} base in train_base.json; {tr['novel_objects_unannotated']} "
        f"novel objects present but unannotated, in {tr['images_with_novel']} images)"
    )
    print(
        f"  val:   {va['images']} images, {va['annotations']} annotations "
        f"({va['novel_annotations']} novel)"
    )
    return 0
