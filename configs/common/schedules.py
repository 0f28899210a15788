"""Learning-rate multipliers (``cfg.lr_multiplier``) for COCO/LVIS schedules at batch 16.

1x = 90k iterations with steps at 60k and 80k (detectron2's); 4x = 360k iterations.
"""

from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler


def multistep(num_x: float, warmup_iters: int = 1000):
    """A step schedule of ``num_x`` times the 90k-iteration 1x schedule."""
    total = int(90000 * num_x)
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[1.0, 0.1, 0.01],
            milestones=[int(total * 60 / 90), int(total * 80 / 90), total],
        ),
        warmup_length=warmup_iters / total,
        warmup_factor=0.001,
    )


lr_multiplier_1x = multistep(1)
lr_multiplier_2x = multistep(2)
lr_multiplier_4x = multistep(4)
