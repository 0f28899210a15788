"""Region-teacher inputs: image and box checks, and the crop geometry shared by all teachers.

For each box ``b`` and scale ``s`` a teacher looks at ``crop(image, expand(b, s))``.
``expand(b, s)`` (:func:`expand_boxes`) enlarges the box about its centre by the factor ``s``
(width and height each multiplied by ``s``) and then **clips** it to the image (no padding: the
part of an enlarged box that falls outside the image is dropped, so a crop near the border is
smaller than ``s`` times the box). :func:`pixel_crop_boxes` turns the clipped float box into
integer pixel bounds with ``floor`` on the top-left corner and ``ceil`` on the bottom-right
corner; every crop keeps at least one pixel in each direction.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ovdet.teacher.base import BoxesLike, ImageLike

__all__ = ["check_boxes", "expand_boxes", "pixel_crop_boxes", "to_uint8_hwc"]


def expand_boxes(boxes: torch.Tensor, scale: float, image_size: tuple[int, int]) -> torch.Tensor:
    """Enlarge boxes about their centres by ``scale`` and clip them to the image.

    Args:
        boxes: (N, 4) float XYXY in image pixels.
        scale: factor applied to width and height (1.0 keeps the box).
        image_size: (H, W) of the image.

    Returns:
        (N, 4) float XYXY boxes clipped to ``[0, W] x [0, H]``.
    """
    height, width = image_size
    boxes = boxes.to(torch.float64)
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    half_w = (boxes[:, 2] - boxes[:, 0]) * (scale / 2)
    half_h = (boxes[:, 3] - boxes[:, 1]) * (scale / 2)
    out = torch.stack(
        [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], dim=1
    )
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out


def pixel_crop_boxes(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Integer pixel bounds of clipped float boxes, for slicing ``image[y0:y1, x0:x1]``.

    ``x0, y0`` are floored, ``x1, y1`` ceiled (the crop covers every pixel the box touches), all
    clamped to the image; a crop keeps at least one pixel in each direction.

    Args:
        boxes: (N, 4) float XYXY boxes already inside ``[0, W] x [0, H]``.
        image_size: (H, W) of the image.

    Returns:
        (N, 4) int64 ``(x0, y0, x1, y1)`` with ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.
    """
    height, width = image_size
    x0 = boxes[:, 0].floor().clamp(0, width - 1)
    y0 = boxes[:, 1].floor().clamp(0, height - 1)
    x1 = torch.maximum(boxes[:, 2].ceil().clamp(0, width), x0 + 1)
    y1 = torch.maximum(boxes[:, 3].ceil().clamp(0, height), y0 + 1)
    return torch.stack([x0, y0, x1, y1], dim=1).to(torch.int64)


def to_uint8_hwc(image: ImageLike, *, owner: str = "RegionTeacher") -> np.ndarray:
    """A teacher's input image as (H, W, 3) uint8 RGB.

    Args:
        image: PIL image, (H, W, 3) uint8 RGB numpy array, or (3, H, W) RGB tensor (uint8, or
            float in [0, 1]).
        owner: name of the caller, for error messages.

    Returns:
        (H, W, 3) uint8 numpy array.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"{owner}: numpy image must be HWC uint8 RGB with 3 channels, got "
                f"dtype {image.dtype} shape {image.shape}; convert it (e.g. np.asarray(pil_rgb))."
            )
        return image
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"{owner}: tensor image must be CHW RGB with 3 channels, got shape "
                f"{tuple(image.shape)}."
            )
        image = image.detach().cpu()
        if image.dtype != torch.uint8:
            if not image.is_floating_point():
                raise ValueError(
                    f"{owner}: tensor image dtype {image.dtype} is not supported; "
                    "pass uint8 (0-255) or float in [0, 1]."
                )
            if image.numel() and (image.min() < 0 or image.max() > 1):
                raise ValueError(
                    f"{owner}: float tensor image must be RGB in [0, 1] (torchvision "
                    f"convention), got values in [{image.min():.3g}, {image.max():.3g}]. "
                    "detectron2 images (0-255 float, BGR) need `img.flip(0).to(torch.uint8)`."
                )
            image = (image * 255).round().to(torch.uint8)
        return image.permute(1, 2, 0).contiguous().numpy()
    raise TypeError(
        f"{owner}: image must be a PIL image, HWC uint8 numpy array or CHW tensor, "
        f"got {type(image).__name__}."
    )


def check_boxes(
    boxes: BoxesLike, image_size: tuple[int, int], *, owner: str = "RegionTeacher"
) -> torch.Tensor:
    """Validated boxes of one image.

    Args:
        boxes: (N, 4) XYXY in image pixels (an empty array of any shape means no box).
        image_size: (H, W) of the image.
        owner: name of the caller, for error messages.

    Returns:
        (N, 4) float64 CPU tensor.

    Raises:
        ValueError: naming the first box that is not finite, has x1 < x0 or y1 < y0, or does
            not overlap the image.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float64).detach().cpu()
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{owner}: boxes must have shape (N, 4) XYXY, got {tuple(boxes.shape)}.")
    height, width = image_size
    bad = (
        ~torch.isfinite(boxes).all(dim=1)
        | (boxes[:, 2] < boxes[:, 0])
        | (boxes[:, 3] < boxes[:, 1])
        | (boxes[:, 2] < 0)
        | (boxes[:, 3] < 0)
        | (boxes[:, 0] > width)
        | (boxes[:, 1] > height)
    )
    if bad.any():
        index = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{owner}: box {index} = {boxes[index].tolist()} is not a valid XYXY box "
            f"overlapping the {width}x{height} (WxH) image; boxes must be finite, x1 >= x0, "
            "y1 >= y0, in image pixels."
        )
    return boxes
