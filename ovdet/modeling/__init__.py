"""Open-vocabulary detectors on detectron2.

Importing this package registers ``OVRCNN`` (META_ARCH_REGISTRY) and
``OVStandardROIHeads`` / ``OVRes5ROIHeads`` (ROI_HEADS_REGISTRY).
"""

import ovdet  # noqa: F401  (compat layer before detectron2)

from .meta_arch import OVRCNN
from .roi_heads import (
    LOSS_TYPES,
    OVFastRCNNOutputLayers,
    OVRes5ROIHeads,
    OVStandardROIHeads,
    TextEmbeddingClassifier,
    federated_class_weights,
    sample_federated_classes,
)

__all__ = [
    "LOSS_TYPES",
    "OVFastRCNNOutputLayers",
    "OVRCNN",
    "OVRes5ROIHeads",
    "OVStandardROIHeads",
    "TextEmbeddingClassifier",
    "federated_class_weights",
    "sample_federated_classes",
]
