"""Learning-rate multipliers (``cfg.lr_multiplier``).

``multistep(num_x)``: detectron2's schedules at batch 16: 1x = 90k iterations with steps at
60k and 80k, 4x = 360k iterations; 1000 warmup iterations from 0.001.

``step_schedule(max_iter, steps, ...)``: any step schedule with linear warmup, e.g. ViLD's
(tensorflow/tpu ``projects/vild/configs/vild_resnet.yaml``: 180k iterations, warmup 1000 from
0.0032 to 0.32, steps at 162k and 171k to 0.032 and 0.0032) or mmdetection's 1x (HierKD: 12
epochs, steps at epochs 8 and 11, warmup 500 from 0.001).
"""

from collections.abc import Sequence

from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler


def step_schedule(
    max_iter: int,
    steps: Sequence[int],
    values: Sequence[float] | None = None,
    warmup_iters: int = 1000,
    warmup_factor: float = 0.001,
):
    """A step schedule of ``max_iter`` iterations with linear warmup.

    Args:
        max_iter: iterations of the run (``train.max_iter``).
        steps: iterations where the multiplier steps down (ascending, < ``max_iter``).
        values: multipliers before the first step and after each step (default 1, 0.1, 0.01,
            ...: ten times smaller at each step).
        warmup_iters: linear warmup from ``warmup_factor`` to the first value over this many
            iterations.
        warmup_factor: multiplier at iteration 0.
    """
    steps = [int(s) for s in steps]
    if values is None:
        values = [10.0**-k for k in range(len(steps) + 1)]
    values = [float(v) for v in values]
    if len(values) != len(steps) + 1:
        raise ValueError(
            f"step_schedule: {len(steps)} steps need {len(steps) + 1} values, got {values}"
        )
    if steps != sorted(steps) or (steps and not (0 < steps[0] and steps[-1] < max_iter)):
        raise ValueError(f"step_schedule: steps must ascend within (0, {max_iter}), got {steps}")
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(values=values, milestones=[*steps, int(max_iter)]),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )


def multistep(num_x: float, warmup_iters: int = 1000):
    """A step schedule of ``num_x`` times the 90k-iteration 1x schedule."""
    total = int(90000 * num_x)
    return step_schedule(
        total, [int(total * 60 / 90), int(total * 80 / 90)], warmup_iters=warmup_iters
    )


lr_multiplier_1x = multistep(1)
lr_multiplier_2x = multistep(2)
lr_multiplier_4x = multistep(4)
