"""``CLIPDenseTeacher``: one pass of CLIP's visual tower per image, RoIAlign per box.

The visual tower runs once on the whole image and each box is pooled from its final feature
map with RoIAlign, then passed through the model's own head. This is an approximation of the
crop embedding (region features see context outside the box through attention / receptive
fields); it is much cheaper for many boxes. Supported towers: open_clip ``VisionTransformer``
(patch tokens of the last block, pooled and passed through ``ln_post`` and ``proj`` in the same
order the model uses for its own pooled token) and ``ModifiedResNet`` (last-stage map
RoIAligned to the attention-pool grid, then ``attnpool``).

The pooled regions are the same integer pixel crops as the crop teachers use (scaled, clipped,
at least one pixel), mapped to the resized image. For ViT a box is average-pooled over the
patch-token grid (RoIAlign, one bin, adaptive sampling), so a whole-image box reproduces the
model's ``pool_type="avg"`` output exactly; for ``pool_type="tok"`` towers the class token is
replaced by this region average, which is the main approximation. The whole image is resized
(squashed, aspect ratio not kept) to the model's input size, since the towers' positional
embeddings are defined for that grid only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer
from torch import nn
from torchvision.ops import roi_align

from ovdet.teacher.clip_teacher import CLIPTeacherBase

__all__ = ["CLIPDenseTeacher"]


class CLIPDenseTeacher(CLIPTeacherBase):
    """Region embeddings RoIAligned from one CLIP feature map per image (approximate).

    Args:
        model: an open_clip model whose ``visual`` is a ``VisionTransformer`` (without an
            attentional pooler, ``pool_type`` "tok" or "avg") or a ``ModifiedResNet``. It is
            moved to ``device`` and set to eval.
        scales: box enlargement factors; embeddings of the scales are normalised and summed,
            then normalised again. ViLD uses (1.0, 1.5).
        device: where the model runs; default CUDA when available, else CPU.
        model_identity: stable name of the weights (see
            :class:`~ovdet.teacher.clip_teacher.CLIPTeacherBase`).
    """

    MODE = "dense"

    def __init__(
        self,
        model: nn.Module,
        *,
        scales: Sequence[float] = (1.0, 1.5),
        device: str | torch.device | None = None,
        model_identity: str | None = None,
    ) -> None:
        super().__init__(model, scales=scales, device=device, model_identity=model_identity)
        visual = self.model.visual
        if isinstance(visual, VisionTransformer):
            if visual.attn_pool is not None or visual.pool_type not in ("tok", "avg"):
                raise NotImplementedError(
                    "CLIPDenseTeacher: VisionTransformer with an attentional pooler or "
                    f"pool_type={visual.pool_type!r} is not supported (only 'tok'/'avg' pooling "
                    "without attn_pool); use CLIPCropTeacher (mode='crop')."
                )
        elif not isinstance(visual, ModifiedResNet):
            raise NotImplementedError(
                f"CLIPDenseTeacher supports open_clip VisionTransformer and ModifiedResNet image "
                f"towers, not {type(visual).__name__}; use CLIPCropTeacher (mode='crop')."
            )

    def _prepare(self, array: np.ndarray) -> torch.Tensor:
        """Whole image -> final feature map (1, C, h, w) of the visual tower."""
        image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).to(self.device)
        image = TF.resize(
            image, list(self._input_size()), interpolation=self._interpolation(), antialias=True
        )
        x = self._normalise_pixels(image)[None].to(self._dtype())
        out = self.model.visual.forward_intermediates(x, indices=1, intermediates_only=True)
        return out["image_intermediates"][-1]

    def _embed_regions(
        self, prepared: torch.Tensor, pixel_boxes: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """RoIAlign (N, 4) integer crop bounds on the feature map and apply the model's head.

        The regions are the same pixel crops as the crop teachers use (so a degenerate box
        still covers one pixel), rescaled to the resized image.
        """
        feature_map = prepared
        visual = self.model.visual
        in_h, in_w = self._input_size()
        ratio = torch.tensor([in_w / image_size[1], in_h / image_size[0]] * 2, dtype=torch.float64)
        rois = (pixel_boxes.to(torch.float64) * ratio).to(self.device, feature_map.dtype)
        stride = in_h / feature_map.shape[-2]
        if isinstance(visual, ModifiedResNet):
            grid = round(math.sqrt(visual.attnpool.positional_embedding.shape[0] - 1))
            pooled = roi_align(
                feature_map, [rois], (grid, grid), 1.0 / stride, sampling_ratio=-1, aligned=True
            )
            return visual.attnpool(pooled)
        # VisionTransformer: follow the model's own order of LayerNorm and pooling.
        if not visual.final_ln_after_pool:
            feature_map = visual.ln_post(feature_map.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        pooled = roi_align(
            feature_map, [rois], (1, 1), 1.0 / stride, sampling_ratio=-1, aligned=True
        )
        pooled = pooled.flatten(1)
        if visual.final_ln_after_pool:
            pooled = visual.ln_post(pooled)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        return pooled
