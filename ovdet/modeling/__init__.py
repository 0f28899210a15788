"""Open-vocabulary detectors on detectron2: the core every method builds on.

Importing this package registers ``OVRCNN`` (META_ARCH_REGISTRY) and
``OVStandardROIHeads`` / ``OVRes5ROIHeads`` (ROI_HEADS_REGISTRY). The methods (ViLD,
ViLD-ensemble, RKD, HierKD, ...) extend it from ``ovdet.methods``.
"""

import ovdet  # noqa: F401  (compat layer before detectron2)

from .meta_arch import OVRCNN
from .roi_heads import (
    ClassificationLoss,
    FederatedClassification,
    OVFastRCNNOutputLayers,
    OVRes5ROIHeads,
    OVStandardROIHeads,
    SigmoidClassification,
    SoftmaxClassification,
    TextEmbeddingClassifier,
    federated_class_weights,
    sample_federated_classes,
)

__all__ = [
    "ClassificationLoss",
    "FederatedClassification",
    "OVFastRCNNOutputLayers",
    "OVRCNN",
    "OVRes5ROIHeads",
    "OVStandardROIHeads",
    "SigmoidClassification",
    "SoftmaxClassification",
    "TextEmbeddingClassifier",
    "federated_class_weights",
    "sample_federated_classes",
]
