"""Config helper: turn the ROI heads of an OV R-CNN FPN config into ViLD-ensemble heads."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from detectron2.config import LazyCall as L
from omegaconf import DictConfig

from .box_head import ViLDEnsembleBoxHead
from .heads import VILD_LAMBDA
from .predictor import OVEnsembleOutputLayers
from .roi_heads import ViLDEnsembleROIHeads

__all__ = ["vild_ensemble"]


def vild_ensemble(roi_heads, base_names: Iterable[str]):
    """ViLD-ensemble heads in place of an ``OVStandardROIHeads`` LazyCall.

    The image head gets its own box head, a copy of ``roi_heads.box_head`` with separate
    weights (:class:`ViLDEnsembleBoxHead`), as in the paper, so distillation and
    classification do not compete for one set of box features.

    Args:
        roi_heads: ``model.roi_heads`` (LazyCall of ``OVStandardROIHeads``, FPN box head
            with ``fc_dims``).
        base_names: names of the base classes (e.g. ``OV_COCO_BASE_NAMES``); the model's
            vocabulary names decide base vs novel at inference. A LazyCall that returns them
            (e.g. reading them from a dataset) works too.

    Returns:
        a copy of ``roi_heads`` as :class:`ViLDEnsembleROIHeads` with the two-branch box head
        and :class:`OVEnsembleOutputLayers` (its ``image_temperature`` unset: 0.01, ViLD's
        value for OpenAI CLIP, unless a config or ``set_image_temperature`` sets it).
    """
    cfg = copy.deepcopy(roi_heads)
    cfg._target_ = ViLDEnsembleROIHeads
    predictor = cfg.box_predictor
    predictor._target_ = OVEnsembleOutputLayers
    # a LazyCall (DictConfig) is resolved when the model is built; names are copied now
    predictor.base_names = base_names if isinstance(base_names, DictConfig) else list(base_names)
    text_head = cfg.box_head
    cfg.box_head = L(ViLDEnsembleBoxHead)(text_head=text_head, image_head=copy.deepcopy(text_head))
    predictor.image_input_size = text_head.fc_dims[-1]
    predictor.lam = VILD_LAMBDA
    return cfg
