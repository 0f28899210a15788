"""Config helper of RKD: L1 + relationship matching on the top-5 proposals per image."""

from __future__ import annotations

from detectron2.config import LazyCall as L

from ovdet.modeling.distill import RegionDistiller

from .loss import RKDDistillation

__all__ = ["RKD_COCO_L1", "RKD_LVIS_L1", "RKD_REGIONS_PER_IMAGE", "rkd_distiller", "rkd_l1_weight"]

# Bangalath et al., NeurIPS 2022, official COCO config (COCO_OVD_Base_RKD.yaml):
# DISTIL_L1_LOSS_WEIGHT = 0.15, IRM_LOSS_WEIGHT = 0.15, NUM_DISTIL_PROP = 5, both weights
# multiplied by rkd_temperature = 100; LVIS config: L1 0.25, IRM 0.13.
RKD_REGIONS_PER_IMAGE = 5
RKD_COCO_L1 = 0.15
RKD_LVIS_L1 = 0.25
RKD_TEMPERATURE = 100.0


def rkd_l1_weight(official_weight: float, embed_dim: int) -> float:
    """ovdet's ``l1_weight`` for an official RKD L1 weight and a teacher of D dimensions.

    The official code takes the L1 as a mean over all N x D elements and multiplies the
    weight by ``rkd_temperature = 100``; ovdet's L1 sums over D (and averages over N), so the
    same loss is ``official_weight * 100 / D``.
    """
    return official_weight * RKD_TEMPERATURE / embed_dim


def rkd_distiller(
    *,
    embed_dim: int = 512,
    official_l1_weight: float = RKD_COCO_L1,
    irm_weight: float = 1.0,
    max_regions: int | None = RKD_REGIONS_PER_IMAGE,
):
    """A LazyCall of RKD distillation on the top ``max_regions`` proposals of each image.

    Args:
        embed_dim: D of the teacher (512 for CLIP ViT-B/32; RN50 CLIP: 1024).
        official_l1_weight: the official config's L1 weight (COCO 0.15, LVIS 0.25), converted
            by :func:`rkd_l1_weight`.
        irm_weight: weight of ovdet's IRM term ``||E E^T - V V^T||_F^2 / N^2``; the official
            IRM row-normalises the two similarity matrices and does not divide by N^2, so there
            is no exact conversion (1.0: a magnitude similar to the L1 term at initialisation).
        max_regions: proposals per image (RKD: 5); None: every stored proposal.

    Returns:
        ``L(RegionDistiller)(objective=L(RKDDistillation)(...), max_regions=...)``.
    """
    return L(RegionDistiller)(
        objective=L(RKDDistillation)(
            l1_weight=rkd_l1_weight(official_l1_weight, embed_dim),
            irm_weight=irm_weight,
            irm_norm="fro",
        ),
        teacher=None,
        max_regions=max_regions,
    )
