"""``ovdet train`` / ``ovdet eval``: training and evaluation from a LazyConfig.

Runs on one process, or on many GPUs / machines through detectron2's :func:`launch`::

    ovdet train --config-file configs/ov_coco/vild_text_r50_fpn_1x.py --num-gpus 8
    ovdet train --config-file CFG --num-machines 2 --machine-rank 0 --dist-url tcp://host:port
    ovdet train --config-file CFG --resume           # continue from output_dir/last_checkpoint
    ovdet eval  --config-file CFG train.init_checkpoint=model_final.pth

Trailing ``key=value`` arguments override config fields (``train.max_iter=100``). Config
files are Python and are executed when loaded: only load configs you trust.
"""

from __future__ import annotations

from typing import Any

import torch
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.engine.defaults import create_ddp_model

from ovdet.engine.build import load_config, load_weights
from ovdet.engine.train import build_model, do_test, do_train

__all__ = ["eval_main", "main", "run"]


def _main_worker(args) -> dict[str, Any]:
    cfg = load_config(args.config_file, args.opts or [])
    default_setup(cfg, args)
    if args.eval_only:
        model = build_model(cfg)
        model = create_ddp_model(model)
        load_weights(model, cfg.train.init_checkpoint)
        return do_test(cfg, model)
    do_train(cfg, resume=args.resume)
    return {}


def _parse(argv: list[str] | None, eval_only: bool):
    parser = default_argument_parser()
    parser.prog = "ovdet eval" if eval_only else "ovdet train"
    args = parser.parse_args(argv)
    if not args.config_file:
        parser.error("--config-file is required")
    if eval_only:
        args.eval_only = True
    return args


def run(args) -> None:
    """Run training or evaluation for parsed ``args`` through detectron2's ``launch``."""
    num_gpus = args.num_gpus if torch.cuda.is_available() else 1
    launch(
        _main_worker,
        num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def main(argv: list[str] | None = None) -> int:
    """``ovdet train``: train (or with --eval-only, evaluate) a LazyConfig."""
    run(_parse(argv, eval_only=False))
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    """``ovdet eval``: evaluate ``train.init_checkpoint`` on the config's test set."""
    run(_parse(argv, eval_only=True))
    return 0
