"""Distillation snippets for OV R-CNN configs (METHODS.md §2-4).

Use in an experiment config::

    from ..common.models.ov_rcnn_fpn import model
    from ..common.models.distill import vild_distiller, hierkd_distiller, vild_ensemble

    model.distillers = [vild_distiller]                       # ViLD-image (offline targets)
    model.distillers = [rkd_distiller, hierkd_distiller(L(OpenCLIPTextEncoder)(...))]
    model.roi_heads = vild_ensemble(model.roi_heads, base_names)   # separate image box head

Region distillers read each input's ``teacher_proposals`` / ``teacher_embeddings``: use
``ovdet.data.teacher_mapper.TeacherTargetsMapper(store=<dir of `ovdet extract-regions`>)`` as
the training mapper (offline), or set ``<distiller>.teacher`` to an online region teacher
(``ovdet.teacher.online.OnlineRegionTeacher``) and give proposals in the dataset dicts.
The caption distiller reads ``captions`` (COCO captions merged into the dataset dicts).

Loss weights and their sources:

- ViLD-image: ``L = L_text + w * L_image`` with ``w = 0.5`` (Gu et al., ICLR 2022; METHODS.md
  §2; the default of ``ViLDImageDistillation``). ``L_image`` is the per-region L1 of
  normalised embeddings summed over D and averaged over regions, as in METHODS.md.
- RKD (Bangalath et al., NeurIPS 2022), official COCO config ``COCO_OVD_Base_RKD.yaml``:
  ``DISTIL_L1_LOSS_WEIGHT = 0.15``, ``IRM_LOSS_WEIGHT = 0.15``, ``NUM_DISTIL_PROP = 5``; the
  official code multiplies both weights by ``rkd_temperature = 100`` and takes the L1 as a mean
  over all N x D elements. ovdet's L1 sums over D, so the same loss is
  ``l1_weight = 0.15 * 100 / D`` (D = 512 for CLIP ViT-B/32; change it with the teacher).
  The official IRM row-normalises the two similarity matrices and does not divide by N^2,
  whereas ovdet follows METHODS.md (``||S_s - S_t||_F^2 / N^2``); there is no exact
  conversion, so ``irm_weight`` keeps the objective's default 1.0 (similar magnitude to the L1
  term at initialisation; tune per dataset). LVIS config: L1 0.25, IRM 0.13.
- HierKD (Ma et al., CVPR 2022), official config: the global (image-caption) loss enters with
  weight 1 and a learnable logit scale initialised to 10 (temperature 0.1)
  (``dist_featuremap_tem = 10.0``). ovdet pools FPN levels (attention pooling, averaged over
  levels) instead of HierKD's max-pooled 3x3 patches of a one-stage head.
"""

import copy
from collections.abc import Iterable

import ovdet  # noqa: F401  (compat layer before detectron2)

# isort: split

from detectron2.config import LazyCall as L

from ovdet.modeling.distill import (
    HierKDGlobalDistillation,
    RKDDistillation,
    ViLDImageDistillation,
)
from ovdet.modeling.distill.distillers import CaptionDistiller, RegionDistiller
from ovdet.modeling.roi_heads import OVEnsembleOutputLayers, ViLDEnsembleBoxHead

CLIP_EMBED_DIM = 512  # CLIP ViT-B/32 (RN50 CLIP: 1024)

VILD_IMAGE_WEIGHT = 0.5
RKD_L1_WEIGHT = 0.15 * 100 / CLIP_EMBED_DIM
RKD_IRM_WEIGHT = 1.0
RKD_REGIONS_PER_IMAGE = 5
HIERKD_GLOBAL_WEIGHT = 1.0
HIERKD_TEMPERATURE = 0.1

# ViLD-image: all stored proposals of each image (the store holds the top-M of the RPN).
vild_distiller = L(RegionDistiller)(
    objective=L(ViLDImageDistillation)(weight=VILD_IMAGE_WEIGHT),
    teacher=None,
    max_regions=None,
)

# RKD: L1 + inter-embedding relationship matching on the top-5 class-agnostic proposals.
rkd_distiller = L(RegionDistiller)(
    objective=L(RKDDistillation)(
        l1_weight=RKD_L1_WEIGHT, irm_weight=RKD_IRM_WEIGHT, irm_norm="fro"
    ),
    teacher=None,
    max_regions=RKD_REGIONS_PER_IMAGE,
)


def hierkd_distiller(
    text_encoder,
    *,
    in_channels=256,
    embed_dim=CLIP_EMBED_DIM,
    in_features=None,
    weight=HIERKD_GLOBAL_WEIGHT,
    temperature=HIERKD_TEMPERATURE,
    choose="random",
):
    """HierKD global level: backbone features vs a random caption of each image.

    Args:
        text_encoder: an ``ovdet.text.TextEncoder`` or its LazyCall (e.g.
            ``L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=...)``).
        in_channels: channels of every pooled level (256 for the FPN; levels are averaged).
        embed_dim: D of the text encoder.
        in_features: feature maps to pool (default: all backbone outputs).
        weight, temperature: loss weight and initial (learnable) temperature.
        choose: "random" or "first" caption.

    Returns:
        a LazyCall of :class:`CaptionDistiller`.
    """
    return L(CaptionDistiller)(
        objective=L(HierKDGlobalDistillation)(
            in_channels=in_channels,
            embed_dim=embed_dim,
            weight=weight,
            temperature=temperature,
            learnable_temperature=True,
            pooling="attention",
        ),
        text_encoder=text_encoder,
        caption_key="captions",
        choose=choose,
        in_features=in_features,
    )


def vild_ensemble(roi_heads, base_names: Iterable[str], *, separate_box_head: bool = True):
    """Turn the ROI heads of an OV R-CNN FPN config into ViLD-ensemble heads.

    Args:
        roi_heads: ``model.roi_heads`` (LazyCall of ``OVStandardROIHeads``).
        base_names: names of the base classes (e.g. ``OV_COCO_BASE_NAMES``); the model's
            vocabulary names decide base vs novel at inference.
        separate_box_head: True (ViLD-ensemble as published): the image head gets its own box
            head, a copy of ``roi_heads.box_head`` with separate weights
            (:class:`ViLDEnsembleBoxHead`), so distillation and classification do not compete
            for one set of box features. False: one shared box head, the image head is a
            linear projection of its features.

    Returns:
        a copy of ``roi_heads`` with ``box_predictor._target_ = OVEnsembleOutputLayers``,
        ``base_names`` set, and (``separate_box_head``) the two-branch box head.
    """
    cfg = copy.deepcopy(roi_heads)
    predictor = cfg.box_predictor
    predictor._target_ = OVEnsembleOutputLayers
    predictor.base_names = list(base_names)
    if separate_box_head:
        text_head = cfg.box_head
        cfg.box_head = L(ViLDEnsembleBoxHead)(
            text_head=text_head, image_head=copy.deepcopy(text_head)
        )
        predictor.image_input_size = text_head.fc_dims[-1]
    return cfg
