"""The ``RegionTeacher`` interface: boxes in an image -> L2-normalised teacher embeddings.

Code that needs teacher targets (offline extraction to a region store,
:func:`ovdet.teacher.extract.extract_regions`; online targets during training,
:class:`ovdet.teacher.online.OnlineRegionTeacher`) is written against this interface, so any
teacher (a CLIP crop teacher, a dense CLIP teacher, a test double) can be plugged in.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
from PIL import Image

__all__ = ["BoxesLike", "ImageLike", "RegionTeacher"]

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor]
BoxesLike = Union[torch.Tensor, np.ndarray]


class RegionTeacher(abc.ABC):
    """Teacher embeddings of boxes in an image (the ViLD-image targets).

    Subclasses provide :attr:`dim`, :attr:`identity` and :meth:`embed`; :meth:`embed_batch`
    loops :meth:`embed` over images. A teacher is frozen: :meth:`embed` never tracks gradients.
    """

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Embedding dimension D."""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Stable string naming the teacher's weights and mode (different targets, different
        string). Region stores are keyed by it, so it must not depend on the process or device.
        """

    @abc.abstractmethod
    def embed(self, image: ImageLike, boxes: BoxesLike) -> torch.Tensor:
        """Teacher embeddings of boxes in one image.

        Args:
            image: PIL image, (H, W, 3) uint8 RGB numpy array, or (3, H, W) RGB tensor (uint8, or
                float in [0, 1]).
            boxes: (N, 4) XYXY in image pixels.

        Returns:
            (N, D) float32 L2-normalised embeddings on the CPU (row i for box i).
        """

    def embed_batch(
        self, images: Sequence[ImageLike], boxes_list: Sequence[BoxesLike]
    ) -> list[torch.Tensor]:
        """:meth:`embed` over several images.

        Args:
            images: B images (any type :meth:`embed` accepts).
            boxes_list: B arrays of shape (N_i, 4) XYXY, one per image.

        Returns:
            list of B float32 tensors (N_i, D) on the CPU.
        """
        if len(images) != len(boxes_list):
            raise ValueError(
                f"{type(self).__name__}.embed_batch: got {len(images)} images but "
                f"{len(boxes_list)} box arrays; pass one (N_i, 4) array per image."
            )
        return [self.embed(image, boxes) for image, boxes in zip(images, boxes_list)]
