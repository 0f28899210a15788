"""Open-vocabulary ROI heads, box predictor, text-embedding classifier and its losses."""

from .cls_losses import (
    ClassificationLoss,
    FederatedClassification,
    SigmoidClassification,
    SoftmaxClassification,
    federated_class_weights,
    sample_federated_classes,
)
from .ov_box_predictor import OVFastRCNNOutputLayers, log_classification_stats
from .ov_roi_heads import OVRes5ROIHeads, OVStandardROIHeads
from .text_classifier import TextEmbeddingClassifier

__all__ = [
    "ClassificationLoss",
    "FederatedClassification",
    "OVFastRCNNOutputLayers",
    "OVRes5ROIHeads",
    "OVStandardROIHeads",
    "SigmoidClassification",
    "SoftmaxClassification",
    "TextEmbeddingClassifier",
    "federated_class_weights",
    "log_classification_stats",
    "sample_federated_classes",
]
