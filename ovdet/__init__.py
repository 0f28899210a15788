"""ovdet: open-vocabulary object detection and instance segmentation on detectron2."""

import warnings

# fvcore (imported by detectron2) scripts its focal losses at import time; torch >= 2.10 warns
# that torch.jit.script is deprecated on every `ovdet` command. Nothing of ovdet scripts.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
)

from ovdet.compat import apply as _apply_compat  # noqa: E402

_apply_compat()

__version__ = "0.1.0"
