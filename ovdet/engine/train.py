"""Training and evaluation from a LazyConfig: ``ovdet train`` / ``ovdet eval``.

A config file defines ``model``, ``dataloader`` (``train``, ``test``, ``evaluator``),
``optimizer``, ``lr_multiplier`` and ``train`` (see ``configs/common/train.py``). Runs on
one process, or on many GPUs / machines through detectron2's :func:`launch`::

    ovdet train --config-file configs/ov_coco/vild_text_r50_fpn_1x.py --num-gpus 8
    ovdet train --config-file CFG --num-machines 2 --machine-rank 0 --dist-url tcp://host:port
    ovdet train --config-file CFG --resume           # continue from output_dir/last_checkpoint
    ovdet eval  --config-file CFG train.init_checkpoint=model_final.pth

Trailing ``key=value`` arguments override config fields (``train.max_iter=100``).

Config files are Python and are executed when loaded: only load configs you trust.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

import ovdet  # noqa: F401  (compat layer before detectron2)
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import (
    AMPTrainer,
    SimpleTrainer,
    default_argument_parser,
    default_setup,
    hooks,
    launch,
)
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.events import CommonMetricPrinter, JSONWriter

logger = logging.getLogger("ovdet.train")


def resolve_device(cfg) -> str:
    """``train.device`` from the config; "cuda" falls back to "cpu" when CUDA is absent."""
    device = str(cfg.train.get("device", "cuda"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("train.device=%s but CUDA is not available: using cpu", device)
        return "cpu"
    return device


def build_model(cfg) -> torch.nn.Module:
    """Instantiate ``cfg.model`` on the configured device."""
    model = instantiate(cfg.model)
    return model.to(resolve_device(cfg))


def do_test(cfg, model) -> dict[str, Any]:
    """Evaluate ``model`` on ``cfg.dataloader.test`` with ``cfg.dataloader.evaluator``."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(
        model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
    )
    if comm.is_main_process() and results:
        print_csv_format(results)
    return results


def _writers(output_dir: str, max_iter: int) -> list:
    import os

    return [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, "metrics.json")),
    ]


def do_train(cfg, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg.model``; evaluate every ``train.eval_period`` and at the end.

    Checkpoints go to ``train.output_dir`` every ``train.checkpointer.period`` iterations;
    with ``resume`` the last one (model, optimizer, scheduler, iteration) is restored.
    """
    model = build_model(cfg)
    logger.info("Model:\n%s", model)
    cfg.optimizer.params.model = model
    optim = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)

    model = create_ddp_model(model, **cfg.train.get("ddp", {}))
    amp = bool(cfg.train.get("amp", {}).get("enabled", False)) and torch.cuda.is_available()
    trainer = (AMPTrainer if amp else SimpleTrainer)(model, train_loader, optim)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    max_iter = int(cfg.train.max_iter)
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if comm.is_main_process()
            else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model)),
            hooks.PeriodicWriter(
                _writers(cfg.train.output_dir, max_iter), period=cfg.train.log_period
            )
            if comm.is_main_process()
            else None,
        ]
    )
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    start_iter = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, max_iter)
    return trainer.storage.latest() if max_iter > start_iter else {}


def _main_worker(args) -> dict[str, Any]:
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts or [])
    default_setup(cfg, args)
    if args.eval_only:
        model = build_model(cfg)
        model = create_ddp_model(model)
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
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
