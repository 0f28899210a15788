"""``ovdet self-train``: rounds of label -> merge -> train -> evaluate.

    ovdet self-train --config-file configs/ov_shapes/vild_text_small.py \
        --weights runs/vild_text/model_final.pth --output runs/st --rounds 2 \
        [--high 0.3] [--low 0.1] [--student teacher|scratch] [--max-iter 700] [--control] \
        ov_shapes.root=DATA ov_shapes.embeddings=DATA/class_embeddings.pt

A killed run resumes with the same command. Files, rule and resume: :mod:`ovdet.self_train`
and ``docs/self_training.md``. Config files are Python and are executed: trusted input only.
"""

from __future__ import annotations

import argparse
import json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet self-train",
        description="Self-train a detector: label its training images, merge with the gold "
        "boxes, train a student, evaluate; for --rounds rounds (resumable).",
    )
    p.add_argument("--config-file", required=True, help="the teacher's LazyConfig (trusted)")
    p.add_argument("--weights", required=True, help="the teacher's checkpoint")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--rounds", type=int, default=1, help="rounds (1)")
    p.add_argument("--high", type=float, default=0.3, help="pseudo boxes >= this are labels")
    p.add_argument(
        "--low", type=float, default=0.1, help="pseudo boxes in [low, high) are ignore regions"
    )
    p.add_argument("--gold-iou", type=float, default=0.5, help="gold wins at this IoU (0.5)")
    p.add_argument("--nms-iou", type=float, default=0.5, help="class-agnostic NMS IoU (0.5)")
    p.add_argument(
        "--pseudo-classes",
        default="novel",
        choices=("novel", "all"),
        help="classes pseudo boxes may have: those without gold boxes (novel) or all",
    )
    p.add_argument(
        "--student",
        dest="init",
        default="teacher",
        choices=("teacher", "scratch"),
        help="the student starts from the teacher's weights or the config's initialisation",
    )
    p.add_argument("--max-iter", type=int, default=None, help="student iterations (config's)")
    p.add_argument("--seed", type=int, default=None, help="student seed (config's)")
    p.add_argument("--max-per-image", type=int, default=100, help="pseudo boxes per image")
    p.add_argument("--batch-size", type=int, default=8, help="images per labelling call")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument(
        "--control",
        action="store_true",
        help="also train each round's gold-only control: the teacher's config on the gold "
        "boxes alone with the student's schedule, evaluated the same way",
    )
    p.add_argument("--overwrite", action="store_true", help="start over in --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ovdet.self_train import run_self_train

    options = vars(args)
    options["config"] = options.pop("config_file")
    options["progress"] = not options.pop("no_progress")
    if options["progress"]:  # the student's training log (detectron2's) on stderr
        from ovdet.utils.logs import log_progress_to_stderr

        log_progress_to_stderr()
    print(json.dumps(run_self_train(**options)))
    return 0
