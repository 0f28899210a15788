"""Distillation machinery of ovdet's detectors (the objectives live in ``ovdet.methods``).

- :class:`DistillContext` — what a distiller sees of one training step of an ``OVRCNN``.
- :class:`RegionDistiller` — student region embeddings of given boxes vs teacher embeddings
  (offline from a region store, or from an online teacher), scored by a region objective.
- :class:`CaptionDistiller` — an image-level embedding vs the text embedding of a caption.
- :mod:`~ovdet.modeling.distill.functional` — input checks shared by the objectives.
- :func:`~ovdet.modeling.distill.gather.gather_rows` — rows of every process (global batches).

Teacher tensors are detached inside every objective: gradients reach only the student.
"""

from .caption import CaptionDistiller
from .context import DistillContext
from .gather import gather_rows
from .region import RegionDistiller

__all__ = ["CaptionDistiller", "DistillContext", "RegionDistiller", "gather_rows"]
