"""``CLIPCropTeacher``: CLIP on PIL crops, through the model's own open_clip preprocessing.

Each crop is cut from the uint8 image and given, as a PIL image, to the open_clip
preprocessing transform itself (``preprocess``, or the one open_clip builds from
``model.visual.preprocess_cfg``), so embeddings are exactly what
``model.encode_image(preprocess(pil_crop))`` gives (the ViLD-image teacher).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from open_clip.transform import image_transform_v2
from PIL import Image
from torch import nn

from ovdet.teacher.clip_teacher import CLIPCropTeacherBase

__all__ = ["CLIPCropTeacher"]


class CLIPCropTeacher(CLIPCropTeacherBase):
    """Region embeddings from CLIP on each crop, preprocessed by open_clip itself (exact).

    Args:
        model: an open_clip model with ``encode_image`` and ``visual`` (e.g. from
            ``open_clip.create_model_and_transforms``). It is moved to ``device`` and set to eval.
        preprocess: the model's eval image transform (PIL image -> CHW tensor), e.g. the third
            value of ``open_clip.create_model_and_transforms``. Default: built by open_clip from
            the model's preprocess configuration
            (:func:`~ovdet.teacher.clip_teacher.resolve_preprocess_cfg`).
        scales: crop enlargement factors; embeddings of the scales are normalised and summed,
            then normalised again. ViLD uses (1.0, 1.5).
        batch_size: crops per ``encode_image`` call.
        device: where the model runs; default CUDA when available, else CPU.
        model_identity: stable name of the weights (see
            :class:`~ovdet.teacher.clip_teacher.CLIPTeacherBase`).
    """

    MODE = "crop-pil"

    def __init__(
        self,
        model: nn.Module,
        *,
        preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
        scales: Sequence[float] = (1.0, 1.5),
        batch_size: int = 64,
        device: str | torch.device | None = None,
        model_identity: str | None = None,
    ) -> None:
        super().__init__(
            model,
            scales=scales,
            batch_size=batch_size,
            device=device,
            model_identity=model_identity,
        )
        if preprocess is None:
            preprocess = image_transform_v2(self.preprocess_cfg, is_train=False)
        self.preprocess = preprocess

    def _preprocess_crop(
        self, prepared: np.ndarray, x0: int, y0: int, x1: int, y1: int
    ) -> torch.Tensor:
        return self.preprocess(Image.fromarray(prepared[y0:y1, x0:x1]))
