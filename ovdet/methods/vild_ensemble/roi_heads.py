"""ViLD-ensemble ROI heads: distillation trains the image head only."""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY
from detectron2.structures import Boxes

from ovdet.modeling.roi_heads import OVStandardROIHeads

from .box_head import ViLDEnsembleBoxHead
from .predictor import OVEnsembleOutputLayers

__all__ = ["ViLDEnsembleROIHeads"]


@ROI_HEADS_REGISTRY.register()
class ViLDEnsembleROIHeads(OVStandardROIHeads):
    """:class:`OVStandardROIHeads` with ViLD-ensemble's two box heads and predictor.

    Detection (training losses and inference) is the parent's; only
    :meth:`region_embeddings`, what the region distillers train, changes: the embeddings of
    the *image* head (image box head, then the image head's projection), so distillation
    and classification do not compete for one embedding (docs/methods.md#vild-ensemble).
    """

    @configurable
    def __init__(
        self, *, box_head: ViLDEnsembleBoxHead, box_predictor: OVEnsembleOutputLayers, **kw
    ):
        """
        Args:
            box_head: a :class:`ViLDEnsembleBoxHead` (text and image box heads).
            box_predictor: an :class:`OVEnsembleOutputLayers`.
            kw: the other arguments of :class:`OVStandardROIHeads`.
        """
        if not isinstance(box_head, ViLDEnsembleBoxHead):
            raise TypeError(
                f"ViLDEnsembleROIHeads: box_head must be a ViLDEnsembleBoxHead (text + image "
                f"box heads), got {type(box_head).__name__}; use "
                "ovdet.methods.vild_ensemble.vild_ensemble(roi_heads, base_names) in the config"
            )
        if not isinstance(box_predictor, OVEnsembleOutputLayers):
            raise TypeError(
                f"ViLDEnsembleROIHeads: box_predictor must be an OVEnsembleOutputLayers, got "
                f"{type(box_predictor).__name__}"
            )
        if box_head.image_size != box_predictor.image_input_size:
            raise ValueError(
                f"ViLDEnsembleROIHeads: the image box head gives {box_head.image_size} features "
                f"but the predictor's image_input_size is {box_predictor.image_input_size}"
            )
        super().__init__(box_head=box_head, box_predictor=box_predictor, **kw)

    def region_embeddings(
        self, features: dict[str, torch.Tensor], boxes: list[Boxes]
    ) -> torch.Tensor:
        """Image-head embeddings of given boxes (for distillation).

        Args:
            features: backbone/FPN feature maps by name, each (N, C, H, W).
            boxes: N :class:`Boxes`, image-coordinate XYXY boxes of each image.

        Returns:
            (sum_i R_i, D) L2-normalised image-head embeddings, images concatenated in order.
        """
        pooled = self.box_pooler([features[f] for f in self.box_in_features], boxes)
        return self.box_predictor.image_embed(self.box_head.image_features(pooled))
