"""ovdet: open-vocabulary object detection and instance segmentation on detectron2."""

from ovdet.compat import apply as _apply_compat

_apply_compat()

__version__ = "0.1.0"
