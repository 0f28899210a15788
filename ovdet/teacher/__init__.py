"""CLIP teachers: models and tools that give CLIP embeddings for distillation.

Region teachers (boxes in an image -> embeddings) implement :class:`RegionTeacher`:
:class:`CLIPCropTeacher` (exact open_clip crops), :class:`CLIPTensorCropTeacher` (batched
torch crops, approximate) and :class:`CLIPDenseTeacher` (one pass + RoIAlign, approximate);
:func:`build_clip_region_teacher` picks one by mode. Their targets reach training offline
(:mod:`ovdet.teacher.extract`, a region store) or online (:class:`OnlineRegionTeacher`).
Pretraining a small CLIP teacher is in :mod:`ovdet.teacher.pretrain`.
"""

from ovdet.teacher.base import RegionTeacher
from ovdet.teacher.clip_crop import CLIPCropTeacher
from ovdet.teacher.clip_dense import CLIPDenseTeacher
from ovdet.teacher.clip_teacher import CLIPCropTeacherBase, CLIPTeacherBase
from ovdet.teacher.clip_tensor_crop import CLIPTensorCropTeacher
from ovdet.teacher.factory import build_clip_region_teacher
from ovdet.teacher.geometry import expand_boxes, pixel_crop_boxes
from ovdet.teacher.online import OnlineRegionTeacher

__all__ = [
    "CLIPCropTeacher",
    "CLIPCropTeacherBase",
    "CLIPDenseTeacher",
    "CLIPTeacherBase",
    "CLIPTensorCropTeacher",
    "OnlineRegionTeacher",
    "RegionTeacher",
    "build_clip_region_teacher",
    "expand_boxes",
    "pixel_crop_boxes",
]
