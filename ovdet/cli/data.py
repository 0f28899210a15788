"""``ovdet data``: generate and check datasets.

    ovdet data ov-shapes --out datasets/ov_shapes --num-train 2000 --num-val 500 --seed 0
    ovdet data ov-shapes --out datasets/ovs_textures --world textures [--background photo]
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

from ovdet.data.synthetic.attributes import ALL_TEXTURES, COLOURS, SHAPES
from ovdet.data.synthetic.config import BACKGROUNDS, COLOUR_MODES, OVShapesConfig
from ovdet.data.synthetic.dataset import generate_ov_shapes
from ovdet.data.synthetic.worlds import WORLDS

# generator options of `ovdet data ov-shapes` (argparse dest = OVShapesConfig field)
_GENERATOR_OPTIONS = (
    "textures",
    "texture_values",
    "colour_mode",
    "min_objects",
    "max_objects",
    "min_size",
    "max_size",
    "min_visible",
    "min_strokes",
    "max_strokes",
    "colours",
    "shapes",
    "novel_fraction",
    "split_seed",
    "background",
    "photo_dir",
    "captions_per_image",
)


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
        help="synthetic open-vocabulary shapes (attribute-composed classes, base/novel split)",
        description="Generate OV-Shapes: COCO json (train_all, train_base, val), captions, "
        "images and split.json under --out. --world starts from a named preset (the worlds of "
        "`ovdet bench ov-shapes --suite`); the other generator options override it.",
    )
    d = OVShapesConfig()
    worlds = "; ".join(f"{w.name}: {w.description}" for w in WORLDS.values())
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-train", type=int, default=2000, help="training images (2000)")
    p.add_argument("--num-val", type=int, default=500, help="validation images (500)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (0)")
    p.add_argument("--world", choices=list(WORLDS), help=f"generator preset ({worlds})")
    p.add_argument("--image-size", type=int, default=d.image_size[0], help="square side (256)")
    p.add_argument(
        "--textures", action="store_true", default=None, help="add the texture attribute"
    )
    p.add_argument(
        "--texture-values",
        type=_names,
        help=f"textures of --textures, from {','.join(ALL_TEXTURES)} "
        f"(default {','.join(d.texture_values)})",
    )
    p.add_argument(
        "--colour-mode",
        choices=list(COLOUR_MODES),
        help="class: colour is a class attribute (default); random: random object colours, "
        "classes are texture x shape (needs --textures)",
    )
    p.add_argument("--min-objects", type=int, help=f"({d.min_objects})")
    p.add_argument("--max-objects", type=int, help=f"({d.max_objects})")
    p.add_argument(
        "--min-size", type=float, help=f"smallest object, fraction of the side ({d.min_size})"
    )
    p.add_argument("--max-size", type=float, help=f"largest object ({d.max_size})")
    p.add_argument(
        "--min-visible", type=float, help=f"least visible fraction of an object ({d.min_visible})"
    )
    p.add_argument("--min-strokes", type=int, help=f"fewest distractor strokes ({d.min_strokes})")
    p.add_argument("--max-strokes", type=int, help=f"most distractor strokes ({d.max_strokes})")
    p.add_argument(
        "--colours",
        type=_names,
        help=f"comma-separated, from {','.join(COLOURS)} (default {','.join(d.colours)})",
    )
    p.add_argument(
        "--shapes",
        type=_names,
        help=f"comma-separated, from {','.join(SHAPES)} (default {','.join(d.shapes)})",
    )
    p.add_argument("--novel-fraction", type=float, help=f"({d.novel_fraction})")
    p.add_argument("--split-seed", type=int, help=f"seed of the split ({d.split_seed})")
    p.add_argument(
        "--background",
        choices=list(BACKGROUNDS),
        help="synthetic (default) or photo: random crops of real photographs",
    )
    p.add_argument(
        "--photo-dir", help="folder of photographs for --background photo (default: shipped)"
    )
    p.add_argument("--captions-per-image", type=int, help=f"({d.captions_per_image})")
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


def config_from_args(args: argparse.Namespace) -> OVShapesConfig:
    """The generator config of ``ovdet data ov-shapes``: the ``--world`` preset (if any), then
    every option given on the command line."""
    params = dict(WORLDS[args.world].params) if args.world else {}
    for name in _GENERATOR_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    return OVShapesConfig(image_size=args.image_size, **params)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dataset == "check":
        return check_main(args)
    try:
        config = config_from_args(args)
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
