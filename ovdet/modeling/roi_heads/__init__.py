"""Open-vocabulary ROI heads, box predictor and text-embedding classifier."""

from .ensemble_box_head import ViLDEnsembleBoxHead
from .ensemble_predictor import OVEnsembleOutputLayers
from .ov_box_predictor import (
    LOSS_TYPES,
    OVFastRCNNOutputLayers,
    federated_class_weights,
    sample_federated_classes,
)
from .ov_roi_heads import OVRes5ROIHeads, OVStandardROIHeads
from .text_classifier import TextEmbeddingClassifier

__all__ = [
    "LOSS_TYPES",
    "OVEnsembleOutputLayers",
    "OVFastRCNNOutputLayers",
    "OVRes5ROIHeads",
    "OVStandardROIHeads",
    "TextEmbeddingClassifier",
    "ViLDEnsembleBoxHead",
    "federated_class_weights",
    "sample_federated_classes",
]
