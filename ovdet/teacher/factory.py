"""``build_clip_region_teacher``: a CLIP region teacher from the command line's mode options."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch import nn

from ovdet.teacher.clip_crop import CLIPCropTeacher
from ovdet.teacher.clip_dense import CLIPDenseTeacher
from ovdet.teacher.clip_teacher import CLIPTeacherBase
from ovdet.teacher.clip_tensor_crop import CLIPTensorCropTeacher

__all__ = ["CROP_BACKENDS", "MODES", "build_clip_region_teacher"]

MODES: tuple[str, ...] = ("crop", "dense")
CROP_BACKENDS: tuple[str, ...] = ("pil", "tensor")


def build_clip_region_teacher(
    model: nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
    *,
    mode: str = "crop",
    crop_backend: str = "pil",
    scales: Sequence[float] = (1.0, 1.5),
    batch_size: int = 64,
    device: str | torch.device | None = None,
    model_identity: str | None = None,
) -> CLIPTeacherBase:
    """The CLIP region teacher of ``ovdet extract-regions --mode M --crop-backend B``.

    - ``mode="crop", crop_backend="pil"``: :class:`~ovdet.teacher.clip_crop.CLIPCropTeacher`,
      identity ending ``:crop-pil``;
    - ``mode="crop", crop_backend="tensor"``:
      :class:`~ovdet.teacher.clip_tensor_crop.CLIPTensorCropTeacher`, ``:crop-tensor``;
    - ``mode="dense"`` (``crop_backend`` ignored):
      :class:`~ovdet.teacher.clip_dense.CLIPDenseTeacher`, ``:dense``.

    Args:
        model: an open_clip model with ``encode_image`` and ``visual``.
        preprocess: the model's eval image transform (PIL image -> CHW tensor); used by the
            PIL crop teacher only (default: built by open_clip from the model's configuration).
        mode: "crop" (CLIP on each crop) or "dense" (one pass per image, RoIAlign).
        crop_backend: "pil" (exact open_clip preprocessing) or "tensor" (batched torch resize,
            approximate); ``mode="crop"`` only.
        scales: crop enlargement factors (ViLD: 1.0 and 1.5).
        batch_size: crops per ``encode_image`` call (crop modes; the dense teacher runs one
            pass per image).
        device: where the model runs; default CUDA when available, else CPU.
        model_identity: stable name of the weights; the teacher's ``identity`` is
            ``f"{model_identity}:{MODE}"`` (default: a hash of the model's state dict).

    Returns:
        the teacher.
    """
    if mode not in MODES:
        raise ValueError(
            f"build_clip_region_teacher: mode must be one of {list(MODES)}, got {mode!r}."
        )
    if crop_backend not in CROP_BACKENDS:
        raise ValueError(
            f"build_clip_region_teacher: crop_backend must be one of {list(CROP_BACKENDS)}, got "
            f"{crop_backend!r}."
        )
    common = {"scales": scales, "device": device, "model_identity": model_identity}
    if mode == "dense":
        return CLIPDenseTeacher(model, **common)
    if crop_backend == "tensor":
        return CLIPTensorCropTeacher(model, batch_size=batch_size, **common)
    return CLIPCropTeacher(model, preprocess=preprocess, batch_size=batch_size, **common)
