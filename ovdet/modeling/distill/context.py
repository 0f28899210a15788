"""What a distiller sees of a training step, and the per-image keys distillers read.

An objective (e.g. :class:`~ovdet.methods.vild.ViLDImageDistillation`,
:class:`~ovdet.methods.rkd.RKDDistillation`,
:class:`~ovdet.methods.hierkd.HierKDGlobalDistillation`) works on tensors. A *distiller* reads
what the objective needs from one training step of an
:class:`~ovdet.modeling.meta_arch.OVRCNN` — the input dicts, the backbone features, the ROI
heads — and returns the objective's ``loss_*`` dict. The model calls every distiller listed in
its ``distillers`` argument with one :class:`DistillContext`::

    losses.update(distiller(context))   # dict[str, Tensor], keys "loss_*"

Per-image inputs read here (documented keys of the detectron2 input dicts, see
:class:`~ovdet.data.mapper.OVDatasetMapper`):

``teacher_proposals``
    :class:`~detectron2.structures.Boxes` or a (M, 4) tensor, XYXY in the pixels of the
    input's ``image`` (the augmented, network-input image, as the mapper delivers them).
``teacher_embeddings``
    (M, D) tensor, row i = the teacher (CLIP) embedding of proposal i (offline targets, e.g.
    from :class:`~ovdet.data.teacher_mapper.TeacherTargetsMapper`).
``teacher_missing``
    bool, True when the image is missing from the region store (it then has no
    ``teacher_proposals`` rows); counted by :class:`~ovdet.modeling.distill.RegionDistiller`.
``teacher_store``
    str, the directory of the region store the targets come from (named in its messages).
``captions``
    ``list[str]`` or ``str``: captions of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from detectron2.structures import ImageList, Instances
from torch import nn

__all__ = ["DistillContext"]


@dataclass
class DistillContext:
    """What a distiller sees of one training step of an OV R-CNN.

    Attributes:
        batched_inputs: the N input dicts of the step (detectron2 format + extra keys).
        images: the preprocessed, padded images (``images.tensor`` is (N, 3, H, W)); boxes in
            the input dicts are in these pixel coordinates (padding is bottom/right only).
        features: backbone (FPN) feature maps by name, each (N, C, H_l, W_l).
        proposals: the RPN proposals of each image (``proposal_boxes``, ``objectness_logits``).
        model: the detector (``model.roi_heads.region_embeddings(features, boxes)``,
            ``model.device``).
    """

    batched_inputs: list[dict]
    images: ImageList
    features: dict[str, torch.Tensor]
    proposals: list[Instances]
    model: nn.Module
