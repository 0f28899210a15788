"""Open-vocabulary meta-architectures."""

from .ov_rcnn import OVRCNN

__all__ = ["OVRCNN"]
