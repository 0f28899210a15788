"""Config helper of ViLD-image: a region distiller on the stored proposals."""

from __future__ import annotations

from detectron2.config import LazyCall as L

from ovdet.modeling.distill import RegionDistiller

from .loss import ViLDImageDistillation

__all__ = ["VILD_IMAGE_WEIGHT", "vild_distiller"]

# L = L_text + w * L_image with w = 0.5 (Gu et al., ICLR 2022)
VILD_IMAGE_WEIGHT = 0.5


def vild_distiller(weight: float = VILD_IMAGE_WEIGHT, max_regions: int | None = None):
    """A LazyCall of ViLD-image distillation: L1 between region and teacher embeddings.

    Region targets are read per image (``teacher_proposals`` / ``teacher_embeddings``, e.g.
    from a region store through ``ovdet.data.teacher_mapper.TeacherTargetsMapper``), or
    computed online when ``<distiller>.teacher`` is set to an online region teacher.

    Args:
        weight: loss weight ``w``.
        max_regions: distil at most this many proposals per image (the first ones: stores
            keep them by descending score); None: every stored proposal.

    Returns:
        ``L(RegionDistiller)(objective=L(ViLDImageDistillation)(weight=...), ...)``.
    """
    return L(RegionDistiller)(
        objective=L(ViLDImageDistillation)(weight=weight), teacher=None, max_regions=max_regions
    )
