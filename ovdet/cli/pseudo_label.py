"""``ovdet pseudo-label``: pseudo-boxes from a teacher detector, as one COCO json.

    ovdet pseudo-label --input photos/ --output pl/          the best shipped model
    ovdet pseudo-label --model NAME --vocab "red circle,blue star" --input "imgs/*.png" \
        --output pl/ [--score-thresh 0.5] [--class-thresh "red circle=0.7"] [--nms 0.5] \
        [--agnostic-nms 0.7] [--max-per-image 50]
    ovdet pseudo-label --config CFG --weights W --vocab coco --coco-json train.json \
        --image-root images/ --captions captions_train.json --output pl/
    ovdet pseudo-label ... --num-shards 4 --shard-index I --output pl/    (I = 0..3)
    ovdet pseudo-label --config CFG --weights W --clip teacher.pt \
        --embeddings class_embeddings.pt --coco-json train.json --image-root images/ \
        --output pl/                      (CLIP on the RPN's proposals: zero-shot ViLD)
    ovdet pseudo-label --merge-shards pl/
    torchrun --nproc_per_node 4 -m ovdet.cli pseudo-label ... --output pl/   (ranks = shards,
                                        rank 0 merges)

A killed run resumes with the same command. The files and fields are described in
:mod:`ovdet.pseudo_label`; the library call is :func:`ovdet.pseudo_label.run_pseudo_label`.
"""

from __future__ import annotations

import argparse
import json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet pseudo-label",
        description="Pseudo-boxes from a teacher detector as one COCO json (resumable).",
    )
    teacher = p.add_argument_group("teacher (as ovdet detect)")
    teacher.add_argument("--model", help="a named model (`ovdet models`) or bundle / card path")
    teacher.add_argument("--config", help="LazyConfig .py file (trusted: executed), with --weights")
    teacher.add_argument("--weights", help="model checkpoint, with --config")
    vocab = teacher.add_mutually_exclusive_group()
    vocab.add_argument("--vocab", help='class names "cat,dog", or coco | lvis | ov-coco ...')
    vocab.add_argument("--vocab-file", help="names file: one class name per line (or .json)")
    vocab.add_argument("--embeddings", help="(C, D) class embeddings from `ovdet embed-text`")
    teacher.add_argument("--names-file", help="names of the --embeddings rows")
    teacher.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    teacher.add_argument("--batch-size", type=int, default=1)
    teacher.add_argument(
        "--sam",
        metavar="SPEC",
        help="masks (RLE) from SAM prompted with the kept boxes: TYPE:CHECKPOINT (TYPE vit_b, "
        "vit_l, vit_h or small) or a checkpoint path (docs/sam.md)",
    )
    clip = p.add_argument_group(
        "CLIP on proposals (zero-shot ViLD) instead of the detector's heads"
    )
    clip.add_argument(
        "--clip",
        metavar="CKPT",
        help="small-CLIP checkpoint (ovdet pretrain-clip): classifies the proposals of "
        "--config/--weights' RPN against --embeddings (of this CLIP)",
    )
    clip.add_argument("--top-proposals", type=int, default=100, help="proposals per image (100)")
    clip.add_argument("--clip-temperature", type=float, default=None, help="(CLIP's own)")
    clip.add_argument(
        "--objectness-weight", type=float, default=0.5, help="score = p^(1-w) * objectness^w"
    )
    inputs = p.add_argument_group("images")
    inputs.add_argument(
        "--input", dest="inputs", nargs="+", help="images, folders or glob patterns"
    )
    inputs.add_argument("--coco-json", help="label the images of this COCO json ...")
    inputs.add_argument("--image-root", help="... found under this folder")
    inputs.add_argument(
        "--captions",
        help="JSON {file name: caption(s)} or COCO captions json: each image gets boxes only "
        "of the classes its captions mention",
    )
    filters = p.add_argument_group("filters")
    filters.add_argument("--score-thresh", type=float, default=0.3, help="in [0, 1]")
    filters.add_argument(
        "--class-thresh", help='per-class thresholds replacing --score-thresh: "cat=0.5,dog=0.3"'
    )
    filters.add_argument("--nms", type=float, default=None, help="per-class NMS IoU (off)")
    filters.add_argument("--agnostic-nms", type=float, default=None, help="class-agnostic NMS IoU")
    filters.add_argument("--max-per-image", type=int, default=100)
    p.add_argument("--output", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="start over in --output")
    p.add_argument("--num-shards", type=int, default=None, help="label every N-th image ...")
    p.add_argument("--shard-index", type=int, default=None, help="... from this one (0-based)")
    p.add_argument(
        "--merge-shards", metavar="DIR", help="merge the finished shards of DIR into one json"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ovdet.pseudo_label import merge_shards, run_pseudo_label
    from ovdet.utils.errors import InputError

    if args.merge_shards is not None:
        summary = merge_shards(args.merge_shards)
        print(json.dumps(dict(summary, output=args.merge_shards)))
        return 0
    if args.output is None:
        raise InputError("--output is required: the folder for pseudo_labels.json")
    options = vars(args)
    del options["merge_shards"]
    options["progress"] = not options.pop("no_progress")
    started = _init_distributed()
    try:
        print(json.dumps(run_pseudo_label(**options)))
    finally:
        if started:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0


def _init_distributed() -> bool:
    """Under a launcher (``torchrun``: ``WORLD_SIZE`` > 1 in the environment) join its
    process group (gloo: only a barrier is needed), so that the ranks are the shards; True
    when this call started it."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    dist.init_process_group("gloo")
    return True
