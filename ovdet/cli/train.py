"""``ovdet train`` / ``ovdet eval``: training and evaluation from a LazyConfig.

Runs on one process, or on many GPUs / machines through detectron2's :func:`launch`::

    ovdet train --config-file configs/ov_coco/vild_text_r50_fpn_scratch_lsj_180k.py --num-gpus 8
    ovdet train --config-file CFG --num-machines 2 --machine-rank 0 --dist-url tcp://host:port
    ovdet train --config-file CFG --resume           # continue from output_dir/last_checkpoint
    ovdet eval  --config-file CFG train.init_checkpoint=model_final.pth

``key=value`` arguments override config fields (``train.max_iter=100``); options may come
before or after them. A key the config does not have is refused with the closest valid one;
``+key=value`` adds a new key on purpose. Config files are Python and are executed when
loaded: only load configs you trust.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch
from detectron2.engine import default_setup, launch
from detectron2.engine.defaults import create_ddp_model

from ovdet.engine.build import load_config, load_weights
from ovdet.engine.train import build_model, check_train_config, do_test, do_train
from ovdet.utils.errors import InputError

__all__ = ["eval_main", "main", "run"]

_EPILOG = """examples:
  ovdet train --config-file configs/ov_coco/vild_text_r50_fpn_scratch_lsj_180k.py --num-gpus 8
  ovdet train --config-file CFG train.max_iter=6 --resume   # newest intact checkpoint
  ovdet eval  --config-file CFG train.init_checkpoint=output/run/model_final.pth

Overrides use Hydra's syntax (KEY=VALUE; null, true, [a,b], 'quoted text'). A key the
config does not have is refused with the closest valid keys; +KEY=VALUE adds one on purpose.
Options may come before or after the overrides."""


def _check_eval(cfg) -> None:
    check_train_config(cfg, eval_only=True)
    if not cfg.train.get("init_checkpoint", None):
        raise InputError(
            "train.init_checkpoint is empty: ovdet eval evaluates a trained model; give it, "
            "e.g. train.init_checkpoint=output/<run>/model_final.pth"
        )


def _main_worker(args) -> dict[str, Any]:
    cfg = load_config(args.config_file, args.opts or [])
    if args.eval_only:
        _check_eval(cfg)  # before default_setup writes anything
    else:
        check_train_config(cfg)
    default_setup(cfg, args)
    if args.eval_only:
        model = build_model(cfg)
        model = create_ddp_model(model)
        # the whole trained model: train.init_partial (a backbone init) does not apply here
        load_weights(model, cfg.train.init_checkpoint, field="train.init_checkpoint")
        return do_test(cfg, model)
    do_train(cfg, resume=args.resume)
    return {}


def _parser(prog: str, eval_only: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Evaluate train.init_checkpoint on the config's test set."
            if eval_only
            else "Train a LazyConfig (and evaluate it)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="LazyConfig file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest intact checkpoint of train.output_dir",
    )
    parser.add_argument("--eval-only", action="store_true", help="evaluate only (= ovdet eval)")
    parser.add_argument("--num-gpus", type=int, default=1, help="number of GPUs per machine")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)"
    )
    # detectron2's deterministic port: an orphan process shows as an occupied port
    port = 2**15 + 2**14 + hash(os.getuid() if sys.platform != "win32" else 1) % 2**14
    parser.add_argument(
        "--dist-url",
        default=f"tcp://127.0.0.1:{port}",
        help="initialisation URL of torch.distributed",
    )
    parser.add_argument(
        "opts",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides (train.max_iter=100; +key=value adds a new key)",
    )
    return parser


def _parse(argv: list[str] | None, eval_only: bool):
    parser = _parser("ovdet eval" if eval_only else "ovdet train", eval_only)
    # options may come before or after the overrides (`... train.max_iter=6 --resume`)
    args = parser.parse_intermixed_args(argv)
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
