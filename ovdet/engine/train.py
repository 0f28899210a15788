"""The training and evaluation loops of a LazyConfig (the command is ``ovdet.cli.train``).

A config file defines ``model``, ``dataloader`` (``train``, ``test``, ``evaluator``),
``optimizer``, ``lr_multiplier`` and ``train`` (see ``configs/common/train.py``).

Optional ``train`` fields read here besides those of ``configs/common/train.py``:
``train.grad_clip`` (max global L2 norm of the gradients before each optimizer step;
0 or absent: no clipping), ``train.seed`` (>= 0: seed every RNG at the start) and
``train.trainable`` (a list of parameter-name prefixes, e.g. ``["roi_heads.mask_head"]``:
only those parameters train, every other one is frozen and the BatchNorm layers left without
a trainable parameter become ``FrozenBatchNorm2d``, so their running statistics stay those of
``train.init_checkpoint``; :func:`freeze_except`).

``train.max_iter = 0`` trains nothing: the model with its initial weights
(``train.init_checkpoint``) is evaluated (e.g. a detector given SAM as its mask source,
``ovdet.modeling.sam.with_sam_masks``).

Weights at the start: ``train.init_checkpoint`` must fit the model, unless
``train.init_partial`` names the part it initialises (e.g. ``"backbone.bottom_up"`` for an
ImageNet R-50; see :func:`ovdet.engine.build.load_weights`). With ``resume``, the newest
intact checkpoint of ``train.output_dir`` is used instead (:mod:`ovdet.engine.resume`), and
``metrics.json`` loses the lines of the iterations trained again.

Programmatic use: :func:`train_and_evaluate` trains a loaded config in this process and
returns the final evaluation results and training scalars.

Config files are Python and are executed when loaded: only load configs you trust.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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
from ovdet.engine.checkpoint import OVDetectionCheckpointer, load_detectron2_weights
from ovdet.engine.resume import drop_metrics_from, resume_last_intact
from ovdet.utils.device import resolve_device
from ovdet.utils.errors import InputError

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


def freeze_except(model: torch.nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Keep only the parameters whose names start with one of ``prefixes`` trainable.

    Every other parameter gets ``requires_grad=False`` (the optimizer built afterwards leaves
    it out), and every BatchNorm layer whose parameters are all frozen is replaced by
    detectron2's ``FrozenBatchNorm2d`` with its statistics: a frozen BatchNorm left in
    training mode would still move its running mean and variance, changing the frozen parts'
    outputs.

    Returns:
        The names of the trainable parameters.

    Raises:
        InputError: no prefixes, or a prefix that names no parameter.
    """
    from detectron2.layers import FrozenBatchNorm2d

    if isinstance(prefixes, str) or not prefixes:
        raise InputError(
            f"train.trainable must be a non-empty list of parameter-name prefixes, got {prefixes!r}"
        )
    prefixes = [str(p) for p in prefixes]
    names = [n for n, _ in model.named_parameters()]

    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix.rstrip(".") + ".")

    def wanted(name: str) -> bool:
        return any(under(name, p) for p in prefixes)

    unmatched = [p for p in prefixes if not any(under(n, p) for n in names)]
    if unmatched:
        tops = sorted({n.split(".")[0] for n in names})
        raise InputError(
            f"train.trainable: {unmatched} name no parameter of the model; parameter names "
            f"start with {tops} (e.g. 'roi_heads.mask_head')"
        )
    for name, param in model.named_parameters():
        param.requires_grad_(wanted(name))
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in child.parameters()
            ):
                setattr(parent, child_name, FrozenBatchNorm2d.convert_frozen_batchnorm(child))
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _writers(output_dir: str, max_iter: int) -> list:
    import os

    return [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, "metrics.json")),
    ]


def do_train(cfg, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg.model``; evaluate every ``train.eval_period`` and at the end.

    Checkpoints go to ``train.output_dir`` every ``train.checkpointer.period`` iterations
    (written atomically); with ``resume`` the newest intact one (model, optimizer, scheduler,
    iteration) is restored, unreadable newer ones are skipped with a log line.

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


def check_train_config(cfg, eval_only: bool = False) -> None:
    """Refuse a config that cannot train (or, ``eval_only``, evaluate) before any work.

    Raises:
        InputError: naming the missing or wrong field and what to write.
    """
    need = ["model", "train", "dataloader"]
    if not eval_only:
        need += ["optimizer", "lr_multiplier"]
    missing = [name for name in need if name not in cfg]
    if missing:
        raise InputError(
            f"the config has no {', '.join(missing)} field(s); a training config defines model, "
            "dataloader, optimizer, lr_multiplier and train (see configs/common/train.py)"
        )
    if eval_only:
        absent = [k for k in ("test", "evaluator") if k not in cfg.dataloader]
        if absent:
            raise InputError(
                f"the config has no test set: dataloader.{' / dataloader.'.join(absent)} missing; "
                "ovdet eval needs dataloader.test (a test dataset) and dataloader.evaluator"
            )
        return
    if "train" not in cfg.dataloader:
        raise InputError("the config has no dataloader.train: nothing to train on")
    for key in ("output_dir", "max_iter", "checkpointer"):
        if key not in cfg.train:
            raise InputError(f"the config has no train.{key} (see configs/common/train.py)")
    period = cfg.train.checkpointer.get("period", None)
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        raise InputError(
            f"train.checkpointer.period must be a whole number of iterations >= 1, got {period!r}"
        )
    keep = cfg.train.checkpointer.get("max_to_keep", None)
    if keep is not None and (not isinstance(keep, int) or keep < 1):
        raise InputError(f"train.checkpointer.max_to_keep must be >= 1 or null, got {keep!r}")


def check_training_data(cfg) -> list[str]:
    """Check the training datasets before anything is built (``train.check_data``, default on).

    Every dataset of ``dataloader.train.dataset.names`` registered with a COCO json (see
    :func:`ovdet.data.register_ov_dataset`) goes through :func:`ovdet.data.check.
    check_registered_dataset` on its fast path (json fields, ids, boxes, and that each image
    file exists): a dataset with errors is refused with what to fix, before a data worker
    would crash on it at some iteration. ``ovdet data check`` gives the full report.

    Returns:
        The names of the datasets checked.

    Raises:
        ovdet.data.datasets.COCOFormatError: naming the dataset, its errors and what to fix.
    """
    if not cfg.train.get("check_data", True):
        return []
    dataset = cfg.dataloader.train.get("dataset", None)
    names = dataset.get("names", None) if dataset is not None else None
    if names is None:
        return []
    names = instantiate(names)  # a LazyCall may register the dataset and return its name
    from detectron2.data import MetadataCatalog

    from ovdet.data.check import check_registered_dataset

    checked = []
    for name in [names] if isinstance(names, str) else list(names):
        if MetadataCatalog.get(name).get("json_file") is None:
            continue  # registered some other way: nothing ovdet can check
        report = check_registered_dataset(name, images="exist").raise_if_errors()
        if report.warnings:
            logger.warning(
                "training data %s: %d kinds of warnings (`ovdet data check %s` lists them)",
                name,
                len(report.warnings),
                MetadataCatalog.get(name).json_file,
            )
        checked.append(name)
    return checked


def _start(cfg, checkpointer: OVDetectionCheckpointer, trainer, resume: bool) -> int:
    """Load what training starts from; return the first iteration to run.

    ``resume``: the newest intact checkpoint of ``train.output_dir`` (model, optimizer,
    scheduler, iteration); when there is none, or without ``resume``: the weights of
    ``train.init_checkpoint`` (partial as ``train.init_partial`` says), if any.
    """
    if resume:
        used = resume_last_intact(checkpointer)
        if used is not None:
            return trainer.iter + 1
        logger.info("resume: no checkpoint in %s; starting from scratch", cfg.train.output_dir)
    init = cfg.train.get("init_checkpoint", None)
    if init:
        partial = cfg.train.get("init_partial", None)
        load_detectron2_weights(
            checkpointer.model,
            init,
            partial=list(partial) if partial and not isinstance(partial, str) else partial,
            field="train.init_checkpoint",
        )
    return 0


def _train(cfg, resume: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train; return (latest scalars, results of the last evaluation)."""
    check_train_config(cfg)
    max_iter = int(cfg.train.max_iter)
    if max_iter < 0:
        raise InputError(f"train.max_iter must be >= 0 (0: evaluate only), got {max_iter}")
    if max_iter == 0:  # nothing to train: evaluate the initial weights
        model = build_model(cfg)
        init = cfg.train.get("init_checkpoint", None)
        if init:
            partial = cfg.train.get("init_partial", None)
            load_detectron2_weights(
                model,
                init,
                partial=list(partial) if partial and not isinstance(partial, str) else partial,
                field="train.init_checkpoint",
            )
        else:
            logger.warning(
                "train.max_iter = 0 and no train.init_checkpoint: evaluating random weights"
            )
        return {}, do_test(cfg, model)
    check_training_data(cfg)
    model = build_model(cfg)
    trainable = cfg.train.get("trainable", None)
    if trainable is not None:
        kept = freeze_except(
            model, list(trainable) if not isinstance(trainable, str) else trainable
        )
        logger.info("train.trainable: %d parameter tensors train, the rest is frozen", len(kept))
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
    # hooks with state (the LR scheduler) are registered before a resume restores them
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if comm.is_main_process()
            else None,
            hooks.EvalHook(cfg.train.eval_period, _evaluate),
        ]
    )
    start_iter = _start(cfg, checkpointer, trainer, resume)
    if comm.is_main_process():
        # iterations from start_iter on are trained (and logged) again: drop their old lines
        # before the writer opens metrics.json for appending
        drop_metrics_from(cfg.train.output_dir, start_iter)
        trainer.register_hooks(
            [
                hooks.PeriodicWriter(
                    _writers(cfg.train.output_dir, max_iter), period=cfg.train.log_period
                )
            ]
        )
    trainer.train(start_iter, max_iter)
    latest = trainer.storage.latest() if max_iter > start_iter else {}
    return latest, final
