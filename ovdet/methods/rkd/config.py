"""Config helper of RKD: L1 + relationship matching on the top-5 proposals per image."""

from __future__ import annotations

from detectron2.config import LazyCall as L

from ovdet.modeling.distill import RegionDistiller

from .loss import RKDDistillation, RKDNormalisedDistillation

__all__ = [
    "RKD_COCO_IRM",
    "RKD_COCO_L1",
    "RKD_FORMS",
    "RKD_LVIS_IRM",
    "RKD_LVIS_L1",
    "RKD_REGIONS_PER_IMAGE",
    "RKD_TEMPERATURE",
    "rkd_distiller",
    "rkd_l1_weight",
]

# Bangalath et al., NeurIPS 2022, official configs (hanoonaR/object-centric-ovd):
# configs/coco/COCO_OVD_Base_RKD.yaml: DISTIL_L1_LOSS_WEIGHT 0.15, IRM_LOSS_WEIGHT 0.15,
# NUM_DISTIL_PROP 5; configs/lvis/LVIS_OVD_Base_RKD.yaml: 0.25, 0.13, 5. The code multiplies
# both weights by rkd_temperature = 100 (CustomFastRCNNOutputLayers.distil_l1_loss, irm_loss).
RKD_REGIONS_PER_IMAGE = 5
RKD_COCO_L1 = 0.15
RKD_COCO_IRM = 0.15
RKD_LVIS_L1 = 0.25
RKD_LVIS_IRM = 0.13
RKD_TEMPERATURE = 100.0

# "official": RKDDistillation (the published objective); "normalised": RKDNormalisedDistillation
# (ovdet's variant, kept for the OV-Shapes configs).
RKD_FORMS = ("official", "normalised")


def rkd_l1_weight(official_weight: float, embed_dim: int) -> float:
    """:class:`RKDNormalisedDistillation`'s ``l1_weight`` for an official L1 weight and D.

    The official code takes the L1 as a mean over all N x D elements and multiplies the
    weight by ``rkd_temperature = 100``; the normalised form sums the L1 over D (and averages
    over N), so the same loss is ``official_weight * 100 / D``.
    """
    return official_weight * RKD_TEMPERATURE / embed_dim


def rkd_distiller(
    *,
    form: str = "official",
    official_l1_weight: float = RKD_COCO_L1,
    official_irm_weight: float = RKD_COCO_IRM,
    max_regions: int | None = RKD_REGIONS_PER_IMAGE,
    embed_dim: int = 512,
    normalised_irm_weight: float = 1.0,
):
    """A LazyCall of RKD distillation on the top ``max_regions`` proposals of each image.

    Args:
        form: ``"official"`` (default): :class:`RKDDistillation` with ``l1_weight =
            official_l1_weight * 100`` and ``irm_weight = official_irm_weight * 100``, the
            official code's terms. ``"normalised"``: ovdet's :class:`RKDNormalisedDistillation`
            with ``l1_weight = official_l1_weight * 100 / embed_dim`` (the same L1 value) and
            ``irm_weight = normalised_irm_weight`` (the OV-Shapes configs' form).
        official_l1_weight: the official config's DISTIL_L1_LOSS_WEIGHT (COCO 0.15, LVIS 0.25).
        official_irm_weight: the official config's IRM_LOSS_WEIGHT (COCO 0.15, LVIS 0.13);
            ``form="official"`` only.
        max_regions: proposals per image (RKD: 5, NUM_DISTIL_PROP); None: every stored
            proposal.
        embed_dim: D of the teacher (512 for CLIP ViT-B/32); ``form="normalised"`` only.
        normalised_irm_weight: weight of ``||E E^T - V V^T||_F^2 / N^2``; ``form="normalised"``
            only (there is no exact conversion from the official IRM weight).

    Returns:
        ``L(RegionDistiller)(objective=L(RKDDistillation or RKDNormalisedDistillation)(...),
        max_regions=...)``.
    """
    if form == "official":
        objective = L(RKDDistillation)(
            l1_weight=official_l1_weight * RKD_TEMPERATURE,
            irm_weight=official_irm_weight * RKD_TEMPERATURE,
        )
    elif form == "normalised":
        objective = L(RKDNormalisedDistillation)(
            l1_weight=rkd_l1_weight(official_l1_weight, embed_dim),
            irm_weight=normalised_irm_weight,
            irm_norm="fro",
        )
    else:
        raise ValueError(f"rkd_distiller: form must be one of {RKD_FORMS}, got {form!r}")
    return L(RegionDistiller)(objective=objective, teacher=None, max_regions=max_regions)
