"""Learning-rate multipliers defined by iteration counts (for short, overridable schedules)."""

from __future__ import annotations

from fvcore.common.param_scheduler import CosineParamScheduler

import ovdet  # noqa: F401  (compat layer before detectron2)

# isort: split

from detectron2.solver import WarmupParamScheduler

__all__ = ["warmup_cosine"]


def warmup_cosine(
    max_iter: int, warmup_iters: int, warmup_factor: float = 0.001, final: float = 0.0
) -> WarmupParamScheduler:
    """Linear warmup over ``warmup_iters`` iterations, then cosine decay from 1 to ``final``.

    detectron2's ``WarmupParamScheduler`` takes the warmup as a fraction of training; this
    takes iterations, so a config can write ``max_iter="${train.max_iter}"`` and keep the
    warmup length when ``train.max_iter`` is overridden.

    Args:
        max_iter: total iterations (``train.max_iter``).
        warmup_iters: warmup iterations (clipped to ``max_iter``).
        warmup_factor: multiplier at iteration 0.
        final: multiplier at the last iteration.

    Returns:
        A multiplier for ``cfg.lr_multiplier`` (``hooks.LRScheduler``).
    """
    max_iter = int(max_iter)
    if max_iter < 1:
        raise ValueError(f"warmup_cosine: max_iter must be >= 1, got {max_iter}")
    if warmup_iters < 0:
        raise ValueError(f"warmup_cosine: warmup_iters must be >= 0, got {warmup_iters}")
    return WarmupParamScheduler(
        CosineParamScheduler(1.0, final),
        warmup_factor=warmup_factor,
        warmup_length=min(int(warmup_iters), max_iter) / max_iter,
    )
