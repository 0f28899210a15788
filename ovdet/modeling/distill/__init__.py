"""Distillation objectives (METHODS.md §2-4), each an ``nn.Module`` returning ``loss_*`` dicts.

- :class:`ViLDImageDistillation` — ViLD-image L1 between region and CLIP crop embeddings.
- :class:`RKDDistillation` — RKD L1 + inter-embedding relationship matching.
- :class:`HierKDGlobalDistillation` — HierKD image-level student embedding vs caption, InfoNCE.
- :func:`vild_ensemble_scores` / :class:`ViLDEnsembleHead` — ViLD-ensemble inference.

Teacher tensors (CLIP embeddings) are detached inside every objective: gradients reach only the
student.
"""

from .distillers import CaptionDistiller, DistillContext, RegionDistiller
from .ensemble import ViLDEnsembleHead, vild_ensemble_scores
from .hierkd import HierKDGlobalDistillation
from .rkd import RKDDistillation
from .vild import ViLDImageDistillation

__all__ = [
    "CaptionDistiller",
    "DistillContext",
    "HierKDGlobalDistillation",
    "RegionDistiller",
    "RKDDistillation",
    "ViLDEnsembleHead",
    "ViLDImageDistillation",
    "vild_ensemble_scores",
]
