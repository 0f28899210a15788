"""``ovdet sam-masks``: SAM masks for the boxes of a COCO dataset (box-only annotations).

    ovdet sam-masks --coco-json boxes.json --image-root images/ --sam ov-shapes-small-sam \
        --output boxes_with_sam_masks.json [--replace]

Each annotation without a mask gets SAM's mask of its box (RLE ``segmentation``) and SAM's
predicted IoU (``mask_score``); train the mask head on them with
``dataloader.train.mapper.masks_optional=True`` and ``min_mask_score`` (docs/sam.md). A
killed run resumes with the same command (:mod:`ovdet.modeling.sam.annotate`).
"""

from __future__ import annotations

import argparse
import json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet sam-masks", description="SAM masks for the boxes of a COCO json (resumable)."
    )
    p.add_argument("--coco-json", required=True, help="the dataset's COCO json")
    p.add_argument("--image-root", required=True, help="the folder its file_name are under")
    p.add_argument(
        "--sam",
        required=True,
        metavar="SPEC",
        help="a shipped SAM (ov-shapes-small-sam), TYPE:CHECKPOINT or a checkpoint path",
    )
    p.add_argument("--output", required=True, help="the output json")
    p.add_argument("--replace", action="store_true", help="replace existing masks too")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ovdet.modeling.sam.annotate import add_sam_masks

    result = add_sam_masks(
        args.coco_json,
        args.image_root,
        args.sam,
        args.output,
        replace=args.replace,
        device=args.device,
        progress=not args.no_progress,
    )
    print(json.dumps(result))
    return 0
