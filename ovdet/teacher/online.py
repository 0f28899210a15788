"""ViLD-image teacher targets computed during training, for the current batch.

The offline alternative (:mod:`ovdet.teacher.extract` + :class:`~ovdet.data.region_store.
RegionEmbeddingStore`) embeds proposals once, in the original images. Online targets instead
run the CLIP teacher on every training image, every iteration (2 crops x M proposals through
CLIP per image), but they see the augmented image (colour jitter, flips, crops) and need no
extraction pass or disk space.

Measured cost (M = 32 proposals, 640x480 images, 2 shared CPU cores, crop mode, PIL crops):
reading an image's targets from a float16 store takes 0.1-1 ms (first read of a shard
included); computing them online takes about 0.5 s per image with a 1-layer 32-pixel ViT
(mostly the 64 crops' PIL preprocessing) and about 22 s per image with a ViT-B/32. Online
targets are for small teachers or GPU training; offline targets for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ovdet.teacher.base import RegionTeacher

__all__ = ["OnlineRegionTeacher"]


class OnlineRegionTeacher:
    """Teacher embeddings of each training image's proposals, computed on the fly.

    Reads, per input dict (the detector's ``batched_inputs``, i.e. what
    :class:`~ovdet.data.OVDatasetMapper` returns):

    - ``"image"``: (3, H, W) tensor in the MODEL's input format, after augmentation: uint8 or
      float with values 0-255, channels in ``input_format`` order. detectron2 models read BGR
      by default, so channels are flipped to RGB for CLIP when ``input_format="BGR"``;
      float values are rounded to uint8 (CLIP's own preprocessing starts from uint8 pixels).
    - ``"teacher_proposals"``: (M, 4) float XYXY in the pixels of ``"image"`` (the AUGMENTED
      image; the mapper transforms the stored original-pixel boxes with the image). Boxes are
      clipped to the image.

    Each box is cropped from the augmented image at the teacher's scales (ViLD: 1.0x and
    1.5x, clipped to the image), so targets differ slightly from offline ones taken from the
    original image: the crops are resampled from the resized image and carry its photometric
    augmentation. The teacher is frozen (no gradients).

    Args:
        teacher: the region teacher (e.g. a
            :class:`~ovdet.teacher.clip_crop.CLIPCropTeacher`).
        input_format: channel order of ``"image"``: "BGR" (detectron2's default) or "RGB";
            pass ``model.input_format``.
        proposals_key: the input-dict key holding the boxes.
    """

    def __init__(
        self,
        teacher: RegionTeacher,
        *,
        input_format: str = "BGR",
        proposals_key: str = "teacher_proposals",
    ) -> None:
        if input_format not in ("BGR", "RGB"):
            raise ValueError(
                f"OnlineRegionTeacher: input_format must be 'BGR' or 'RGB', got {input_format!r}"
            )
        self.teacher = teacher
        self.input_format = input_format
        self.proposals_key = proposals_key

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return self.teacher.dim

    def _rgb_uint8(self, image: Any, index: int) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
            raise ValueError(
                f"OnlineRegionTeacher: batched_inputs[{index}]['image'] must be a (3, H, W) "
                f"tensor, got {shape}"
            )
        image = image.detach().cpu()
        if image.dtype != torch.uint8:
            image = image.float().round().clamp(0, 255).to(torch.uint8)
        if self.input_format == "BGR":
            image = image.flip(0)
        return image

    def __call__(self, batched_inputs: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        """Teacher embeddings for a batch.

        Args:
            batched_inputs: B dicts with ``"image"`` (3, H, W) and ``proposals_key`` (M_i, 4).

        Returns:
            list of B float32 tensors (M_i, D), L2-normalised, on the device of each
            ``"image"``; row j belongs to proposal j.
        """
        out = []
        for index, inputs in enumerate(batched_inputs):
            for key in ("image", self.proposals_key):
                if key not in inputs:
                    raise KeyError(
                        f"OnlineRegionTeacher: batched_inputs[{index}] has no {key!r} (keys: "
                        f"{sorted(inputs)}); the data mapper must provide it"
                    )
            image = self._rgb_uint8(inputs["image"], index)
            height, width = image.shape[1:]
            boxes = torch.as_tensor(inputs[self.proposals_key]).detach().cpu().float()
            boxes = boxes.reshape(-1, 4).clone()
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
            embeddings = self.teacher.embed(image, boxes)
            out.append(embeddings.to(inputs["image"].device))
        return out
