"""The training and evaluation loops of a LazyConfig (the command is ``ovdet.cli.train``).

A config file defines ``model``, ``dataloader`` (``train``, ``test``, ``evaluator``),
``optimizer``, ``lr_multiplier`` and ``train`` (see ``configs/common/train.py``).

Optional ``train`` fields read here besides those of ``configs/common/train.py``:
``train.grad_clip`` (max global L2 norm of the gradients before each optimizer step;
0 or absent: no clipping) and ``train.seed`` (>= 0: seed every RNG at the start).

Programmatic use: :func:`train_and_evaluate` trains a loaded config in this process and
returns the final evaluation results and training scalars.

Config files are Python and are executed when loaded: only load configs you trust.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

# isort: split

from detectron2.config import instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, hooks
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import CommonMetricPrinter, JSONWriter

from ovdet.engine import build
from ovdet.engine.checkpoint import OVDetectionCheckpointer
from ovdet.utils.device import resolve_device

logger = logging.getLogger("ovdet.train")


def build_model(cfg) -> torch.nn.Module:
    """Instantiate ``cfg.model`` on ``train.device`` ("auto": CUDA when present)."""
    device = resolve_device(cfg.train.get("device", "auto"), where="train.device")
    return build.build_model(cfg, device)


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


def add_gradient_clipping(optimizer: torch.optim.Optimizer, max_norm: float | None) -> None:
    """Clip the global L2 norm of ``optimizer``'s gradients to ``max_norm`` before each step.

    Registered as an optimizer step pre-hook, so it also runs after AMP's gradient unscaling
    (``GradScaler.step`` unscales, then calls ``optimizer.step``). ``None``/0: no clipping.
    """
    if not max_norm:
        return
    if max_norm < 0:
        raise ValueError(f"train.grad_clip must be >= 0 (0 disables clipping), got {max_norm}")
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def _clip(opt, args, kwargs) -> None:
        torch.nn.utils.clip_grad_norm_(params, float(max_norm))

    optimizer.register_step_pre_hook(_clip)


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

    Returns:
        The trainer's latest scalars ``{name: (value, iteration)}`` (empty when nothing was
        left to train).
    """
    return _train(cfg, resume)[0]


def train_and_evaluate(cfg, resume: bool = False) -> dict[str, Any]:
    """Train a loaded LazyConfig in this process and evaluate the final model.

    Seeds every RNG with ``train.seed`` when it is >= 0 (as ``ovdet train`` does through
    detectron2's ``default_setup``), creates ``train.output_dir``, then runs :func:`do_train`.

    Returns:
        ``{"test": final evaluation results (nested dict, e.g. {"bbox": {"AP50_novel": ..}}),
        "scalars": {name: value} latest training scalars, "iterations": int,
        "train_time_s": float, "output_dir": str}``.
    """
    seed = int(cfg.train.get("seed", -1))
    if seed >= 0:
        seed_all_rng(seed)
    Path(cfg.train.output_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    latest, final = _train(cfg, resume)
    return {
        "test": final,
        "scalars": {k: float(v[0]) for k, v in latest.items()},
        "iterations": int(cfg.train.max_iter),
        "train_time_s": time.perf_counter() - start,
        "output_dir": str(cfg.train.output_dir),
    }


def _train(cfg, resume: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train; return (latest scalars, results of the last evaluation)."""
    model = build_model(cfg)
    logger.info("Model:\n%s", model)
    cfg.optimizer.params.model = model
    optim = instantiate(cfg.optimizer)
    add_gradient_clipping(optim, cfg.train.get("grad_clip", None))
    train_loader = instantiate(cfg.dataloader.train)
    final: dict[str, Any] = {}

    def _evaluate() -> dict[str, Any]:
        results = do_test(cfg, model)
        final.clear()
        final.update(results)
        return results

    model = create_ddp_model(model, **cfg.train.get("ddp", {}))
    amp = bool(cfg.train.get("amp", {}).get("enabled", False)) and torch.cuda.is_available()
    trainer = (AMPTrainer if amp else SimpleTrainer)(model, train_loader, optim)
    checkpointer = OVDetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    max_iter = int(cfg.train.max_iter)
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if comm.is_main_process()
            else None,
            hooks.EvalHook(cfg.train.eval_period, _evaluate),
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
    latest = trainer.storage.latest() if max_iter > start_iter else {}
    return latest, final
