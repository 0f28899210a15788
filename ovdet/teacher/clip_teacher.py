"""The part shared by the CLIP region teachers: the open_clip model and the multi-scale loop.

For each box ``b`` the teacher embedding is (docs/methods.md#region-teacher-and-region-store)::

    v = normalise( sum_{s in scales} normalise( CLIP( crop(image, expand(b, s)) ) ) )

with ``scales = (1.0, 1.5)`` by default (ViLD); the crop geometry is in
:mod:`ovdet.teacher.geometry`. How ``CLIP(crop)`` is computed is what the subclasses differ in:

- :class:`~ovdet.teacher.clip_crop.CLIPCropTeacher`: PIL crops through the model's own
  open_clip preprocessing (exact);
- :class:`~ovdet.teacher.clip_tensor_crop.CLIPTensorCropTeacher`: the same crops resized with
  batched torch ops (approximate, faster on a GPU);
- :class:`~ovdet.teacher.clip_dense.CLIPDenseTeacher`: one pass of the visual tower on the
  whole image, RoIAlign on its final feature map (approximate, much cheaper for many boxes).

:func:`~ovdet.teacher.factory.build_clip_region_teacher` picks one from the command-line
``mode`` / ``crop_backend`` options.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transform import PreprocessCfg, merge_preprocess_dict
from torch import nn
from torchvision.transforms import InterpolationMode

from ovdet.teacher.base import BoxesLike, ImageLike, RegionTeacher
from ovdet.teacher.geometry import check_boxes, expand_boxes, pixel_crop_boxes, to_uint8_hwc
from ovdet.text.encoder import state_dict_digest

__all__ = ["CLIPCropTeacherBase", "CLIPTeacherBase", "resolve_preprocess_cfg"]


def resolve_preprocess_cfg(model: nn.Module) -> PreprocessCfg:
    """The image preprocessing configuration of an open_clip model.

    Reads ``model.visual.preprocess_cfg`` (set by ``open_clip.create_model*``) or, for models
    built directly from their classes, the legacy ``image_size`` / ``image_mean`` / ``image_std``
    attributes; missing fields take open_clip's defaults (OpenAI mean/std, bicubic, shortest).

    Args:
        model: an open_clip model (``CLIP``, ``CustomTextCLIP``, ``CoCa``, ...).

    Returns:
        ``PreprocessCfg``.
    """
    cfg = dict(open_clip.get_model_preprocess_cfg(model))
    return PreprocessCfg(**merge_preprocess_dict(PreprocessCfg(), cfg))


class CLIPTeacherBase(RegionTeacher):
    """Region embeddings from a frozen open_clip CLIP model (the ViLD-image teacher).

    Not an ``nn.Module``: it wraps a frozen CLIP model, runs it in eval mode under
    ``torch.no_grad`` and returns float32 L2-normalised embeddings on the CPU. Subclasses set
    :attr:`MODE` and implement :meth:`_embed_regions` (and :meth:`_prepare` when the image needs
    one pass of its own, e.g. a feature map).

    Args:
        model: an open_clip model with ``encode_image`` and ``visual`` (e.g. from
            ``open_clip.create_model_and_transforms``). It is moved to ``device`` and set to eval.
        scales: crop enlargement factors; embeddings of the scales are normalised and summed,
            then normalised again. ViLD uses (1.0, 1.5).
        device: where the model runs; default CUDA when available, else CPU.
        model_identity: stable name of the model's weights (e.g. ``"open_clip:ViT-B-32:
            sha256=..."``, as :func:`ovdet.cli.extract_regions.build_teacher_model` returns).
            Default: a SHA-256 of the model's state dict, computed on first use of
            :attr:`identity` and memoised (it does not follow later in-place weight updates).
    """

    #: the teacher's way of computing embeddings; the last part of :attr:`identity`.
    MODE: str = ""

    def __init__(
        self,
        model: nn.Module,
        *,
        scales: Sequence[float] = (1.0, 1.5),
        device: str | torch.device | None = None,
        model_identity: str | None = None,
    ) -> None:
        name = type(self).__name__
        scales = tuple(float(s) for s in scales)
        if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
            raise ValueError(
                f"{name}: scales must be a non-empty list of positive numbers, got {scales}."
            )
        if not hasattr(model, "encode_image") or not hasattr(model, "visual"):
            raise TypeError(
                f"{name}: model must be an open_clip model with `encode_image` and "
                f"`visual`, got {type(model).__name__}."
            )
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocess_cfg = resolve_preprocess_cfg(model)
        self.scales = scales
        self._model_identity = model_identity
        self._dim: int | None = None

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        if self._dim is None:
            output_dim = getattr(self.model.visual, "output_dim", None)
            if output_dim is None:
                size = self._input_size()
                with torch.no_grad():
                    probe = torch.zeros(1, 3, *size, device=self.device, dtype=self._dtype())
                    output_dim = self.model.encode_image(probe).shape[-1]
            self._dim = int(output_dim)
        return self._dim

    @property
    def model_identity(self) -> str:
        """Stable name of the CLIP weights (see the ``model_identity`` argument)."""
        if self._model_identity is None:
            digest = state_dict_digest(self.model)[:16]
            self._model_identity = f"open_clip:{type(self.model).__name__}:state-sha256={digest}"
        return self._model_identity

    @property
    def identity(self) -> str:
        """``"<model identity>:<MODE>"``, e.g. ``"open_clip:ViT-B-32:tag=openai:crop-pil"``."""
        return f"{self.model_identity}:{self.MODE}"

    def _dtype(self) -> torch.dtype:
        return next(self.model.visual.parameters()).dtype

    def _input_size(self) -> tuple[int, int]:
        size = self.preprocess_cfg.size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def _interpolation(self) -> InterpolationMode:
        if self.preprocess_cfg.interpolation == "bilinear":
            return InterpolationMode.BILINEAR
        return InterpolationMode.BICUBIC

    def _normalise_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """(3, h, w) uint8 -> float normalised with the model's mean/std."""
        mean = torch.tensor(self.preprocess_cfg.mean, device=image.device).view(3, 1, 1)
        std = torch.tensor(self.preprocess_cfg.std, device=image.device).view(3, 1, 1)
        return (image.float() / 255 - mean) / std

    # ------------------------------------------------------------------ public API
    def embed(self, image: ImageLike, boxes: BoxesLike) -> torch.Tensor:
        """Teacher embeddings of boxes in one image.

        Args:
            image: PIL image, (H, W, 3) uint8 RGB numpy array, or (3, H, W) RGB tensor (uint8, or
                float in [0, 1]).
            boxes: (N, 4) XYXY in image pixels.

        Returns:
            (N, D) float32 L2-normalised embeddings on the CPU (row i for box i).
        """
        owner = type(self).__name__
        array = to_uint8_hwc(image, owner=owner)
        image_size = (array.shape[0], array.shape[1])
        boxes = check_boxes(boxes, image_size, owner=owner)
        if boxes.shape[0] == 0:
            return torch.zeros(0, self.dim)
        total = None
        with torch.no_grad():
            prepared = self._prepare(array)
            for scale in self.scales:
                pixel_boxes = pixel_crop_boxes(expand_boxes(boxes, scale, image_size), image_size)
                emb = self._embed_regions(prepared, pixel_boxes, image_size)
                emb = F.normalize(emb.float(), dim=-1)
                total = emb if total is None else total + emb
        return F.normalize(total, dim=-1).cpu()

    # ------------------------------------------------------------------ subclass hooks
    def _prepare(self, array: np.ndarray) -> Any:
        """Per-image work done once for all scales (called under ``no_grad``).

        Args:
            array: (H, W, 3) uint8 RGB image.

        Returns:
            what :meth:`_embed_regions` reads (default: ``array`` itself).
        """
        return array

    @abc.abstractmethod
    def _embed_regions(
        self, prepared: Any, pixel_boxes: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """(N, 4) integer crop bounds of one scale -> (N, D) un-normalised embeddings.

        Args:
            prepared: what :meth:`_prepare` returned for the image.
            pixel_boxes: (N, 4) int64 ``(x0, y0, x1, y1)`` pixel crops (see
                :func:`~ovdet.teacher.geometry.pixel_crop_boxes`).
            image_size: (H, W) of the image.
        """


class CLIPCropTeacherBase(CLIPTeacherBase):
    """CLIP on each crop: crops are preprocessed one by one and encoded ``batch_size`` at a time.

    Subclasses implement :meth:`_preprocess_crop` (how a crop becomes the model's input).

    Args:
        model: as in :class:`CLIPTeacherBase`.
        scales: as in :class:`CLIPTeacherBase`.
        batch_size: crops per ``encode_image`` call (memory stays bounded for many boxes).
        device: as in :class:`CLIPTeacherBase`.
        model_identity: as in :class:`CLIPTeacherBase`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        scales: Sequence[float] = (1.0, 1.5),
        batch_size: int = 64,
        device: str | torch.device | None = None,
        model_identity: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch_size must be >= 1, got {batch_size}.")
        super().__init__(model, scales=scales, device=device, model_identity=model_identity)
        self.batch_size = int(batch_size)

    @abc.abstractmethod
    def _preprocess_crop(self, prepared: Any, x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
        """One crop ``image[y0:y1, x0:x1]`` of the prepared image -> (3, S, S) model input."""

    def _embed_regions(
        self, prepared: Any, pixel_boxes: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        bounds = pixel_boxes.tolist()
        out = []
        for start in range(0, len(bounds), self.batch_size):
            chunk = bounds[start : start + self.batch_size]
            crops = [self._preprocess_crop(prepared, x0, y0, x1, y1) for x0, y0, x1, y1 in chunk]
            batch = torch.stack(crops).to(self.device, self._dtype())
            out.append(self.model.encode_image(batch))
        return torch.cat(out)
