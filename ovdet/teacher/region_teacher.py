"""CLIP region teacher: boxes in an image -> CLIP image embeddings (METHODS.md §2, ViLD-image).

For each box ``b`` the teacher embedding is (METHODS.md §2)::

    v = normalise( sum_{s in scales} normalise( CLIP( crop(image, expand(b, s)) ) ) )

with ``scales = (1.0, 1.5)`` by default. ``expand(b, s)`` enlarges the box about its centre by
the factor ``s`` (width and height each multiplied by ``s``) and then **clips** it to the image
(no padding: the part of an enlarged box that falls outside the image is dropped, so a crop near
the border is smaller than ``s`` times the box). The clipped float box is turned into integer
pixel bounds with ``floor`` on the top-left corner and ``ceil`` on the bottom-right corner, and
every crop keeps at least one pixel in each direction (see :func:`pixel_crop_boxes`).

Two modes:

- ``mode="crop"`` (ViLD): each crop goes through the CLIP model's own image preprocessing and
  ``model.encode_image``. With ``crop_backend="pil"`` (default) crops are cut from the uint8
  image and given, as PIL images, to the open_clip preprocessing transform itself (``preprocess``
  or the one open_clip builds from ``model.visual.preprocess_cfg``), so embeddings are exactly
  what ``model.encode_image(preprocess(pil_crop))`` gives. ``crop_backend="tensor"`` reproduces
  the same geometry (resize shortest side, centre crop, normalise) with batched torch ops on the
  teacher's device; it is an *approximation*: torch's antialiased bicubic resize of uint8 tensors
  differs from PIL's fixed-point implementation by at most 1-2 grey levels on well under 1% of
  the pixels, which moves embeddings by about 1e-4 (cosine > 0.999 on random-weight models).
- ``mode="dense"``: the visual tower runs once on the whole image and each box is pooled from
  its final feature map with RoIAlign, then passed through the model's own head. This is an
  approximation of the crop embedding (region features see context outside the box through
  attention / receptive fields); it is much cheaper for many boxes. Supported towers:
  open_clip ``VisionTransformer`` (patch tokens of the last block, pooled and passed through
  ``ln_post`` and ``proj`` in the same order the model uses for its own pooled token) and
  ``ModifiedResNet`` (last-stage map RoIAligned to the attention-pool grid, then ``attnpool``).
  The pooled regions are the same integer pixel crops as in crop mode (scaled, clipped, at
  least one pixel), mapped to the resized image. For ViT a box is average-pooled over the
  patch-token grid (RoIAlign, one bin, adaptive sampling), so a whole-image box reproduces the
  model's ``pool_type="avg"`` output exactly; for ``pool_type="tok"`` towers the class token is
  replaced by this region average, which is the main approximation.
  The whole image is resized (squashed, aspect ratio not kept) to the model's input size, since
  the towers' positional embeddings are defined for that grid only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict
from open_clip.transformer import VisionTransformer
from PIL import Image
from torch import nn
from torchvision.ops import roi_align
from torchvision.transforms import InterpolationMode

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor]

__all__ = [
    "CLIPRegionTeacher",
    "expand_boxes",
    "pixel_crop_boxes",
    "resolve_preprocess_cfg",
]


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


def _to_uint8_hwc(image: ImageLike) -> np.ndarray:
    """PIL / HWC uint8 numpy / CHW tensor (uint8, or float in [0, 1]) -> (H, W, 3) uint8 RGB."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"CLIPRegionTeacher: numpy image must be HWC uint8 RGB with 3 channels, got "
                f"dtype {image.dtype} shape {image.shape}; convert it (e.g. np.asarray(pil_rgb))."
            )
        return image
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"CLIPRegionTeacher: tensor image must be CHW RGB with 3 channels, got shape "
                f"{tuple(image.shape)}."
            )
        image = image.detach().cpu()
        if image.dtype != torch.uint8:
            if not image.is_floating_point():
                raise ValueError(
                    f"CLIPRegionTeacher: tensor image dtype {image.dtype} is not supported; "
                    "pass uint8 (0-255) or float in [0, 1]."
                )
            if image.numel() and (image.min() < 0 or image.max() > 1):
                raise ValueError(
                    "CLIPRegionTeacher: float tensor image must be RGB in [0, 1] (torchvision "
                    f"convention), got values in [{image.min():.3g}, {image.max():.3g}]. "
                    "detectron2 images (0-255 float, BGR) need `img.flip(0).to(torch.uint8)`."
                )
            image = (image * 255).round().to(torch.uint8)
        return image.permute(1, 2, 0).contiguous().numpy()
    raise TypeError(
        f"CLIPRegionTeacher: image must be a PIL image, HWC uint8 numpy array or CHW tensor, "
        f"got {type(image).__name__}."
    )


def _check_boxes(boxes: torch.Tensor | np.ndarray, image_size: tuple[int, int]) -> torch.Tensor:
    boxes = torch.as_tensor(boxes, dtype=torch.float64).detach().cpu()
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"CLIPRegionTeacher: boxes must have shape (N, 4) XYXY, got {tuple(boxes.shape)}."
        )
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
            f"CLIPRegionTeacher: box {index} = {boxes[index].tolist()} is not a valid XYXY box "
            f"overlapping the {width}x{height} (WxH) image; boxes must be finite, x1 >= x0, "
            "y1 >= y0, in image pixels."
        )
    return boxes


class CLIPRegionTeacher:
    """Region embeddings from an open_clip CLIP model (the ViLD-image teacher).

    Not an ``nn.Module``: it wraps a frozen CLIP model, runs it in eval mode under
    ``torch.no_grad`` and returns float32 L2-normalised embeddings on the CPU.

    Args:
        model: an open_clip model with ``encode_image`` and ``visual`` (e.g. from
            ``open_clip.create_model_and_transforms``). It is moved to ``device`` and set to eval.
        preprocess: the model's eval image transform (PIL image -> CHW tensor), e.g. the third
            value of ``open_clip.create_model_and_transforms``. Default: built by open_clip from
            the model's preprocess configuration (:func:`resolve_preprocess_cfg`). Used by
            ``mode="crop", crop_backend="pil"``.
        scales: crop enlargement factors; embeddings of the scales are normalised and summed,
            then normalised again. ViLD uses (1.0, 1.5).
        mode: "crop" (CLIP on each crop; exact) or "dense" (one pass on the image, RoIAlign on the
            final feature map; approximate, see the module docstring).
        crop_backend: "pil" (default; crops preprocessed by ``preprocess``, bit-exact with
            open_clip) or "tensor" (batched torch resize on ``device``; approximate).
        batch_size: crops per ``encode_image`` call.
        device: where the model runs; default CUDA when available, else CPU.
    """

    def __init__(
        self,
        model: nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
        *,
        scales: Sequence[float] = (1.0, 1.5),
        mode: str = "crop",
        crop_backend: str = "pil",
        batch_size: int = 64,
        device: str | torch.device | None = None,
    ) -> None:
        if mode not in ("crop", "dense"):
            raise ValueError(f"CLIPRegionTeacher: mode must be 'crop' or 'dense', got {mode!r}.")
        if crop_backend not in ("pil", "tensor"):
            raise ValueError(
                f"CLIPRegionTeacher: crop_backend must be 'pil' or 'tensor', got {crop_backend!r}."
            )
        scales = tuple(float(s) for s in scales)
        if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
            raise ValueError(
                f"CLIPRegionTeacher: scales must be a non-empty list of positive numbers, got "
                f"{scales}."
            )
        if batch_size < 1:
            raise ValueError(f"CLIPRegionTeacher: batch_size must be >= 1, got {batch_size}.")
        if not hasattr(model, "encode_image") or not hasattr(model, "visual"):
            raise TypeError(
                "CLIPRegionTeacher: model must be an open_clip model with `encode_image` and "
                f"`visual`, got {type(model).__name__}."
            )
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocess_cfg = resolve_preprocess_cfg(model)
        if preprocess is None:
            preprocess = image_transform_v2(self.preprocess_cfg, is_train=False)
        self.preprocess = preprocess
        self.scales = scales
        self.mode = mode
        self.crop_backend = crop_backend
        self.batch_size = int(batch_size)
        if mode == "dense":
            self._check_dense_support()
        if mode == "crop" and crop_backend == "tensor":
            self._check_tensor_support()
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

    def _dtype(self) -> torch.dtype:
        return next(self.model.visual.parameters()).dtype

    def _input_size(self) -> tuple[int, int]:
        size = self.preprocess_cfg.size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    # ------------------------------------------------------------------ public API
    def embed(self, image: ImageLike, boxes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Teacher embeddings of boxes in one image.

        Args:
            image: PIL image, (H, W, 3) uint8 RGB numpy array, or (3, H, W) RGB tensor (uint8, or
                float in [0, 1]).
            boxes: (N, 4) XYXY in image pixels.

        Returns:
            (N, D) float32 L2-normalised embeddings on the CPU (row i for box i).
        """
        array = _to_uint8_hwc(image)
        image_size = (array.shape[0], array.shape[1])
        boxes = _check_boxes(boxes, image_size)
        if boxes.shape[0] == 0:
            return torch.zeros(0, self.dim)
        total = None
        with torch.no_grad():
            dense_map = self._dense_features(array) if self.mode == "dense" else None
            for scale in self.scales:
                pixel_boxes = pixel_crop_boxes(expand_boxes(boxes, scale, image_size), image_size)
                if self.mode == "dense":
                    emb = self._dense_embed(dense_map, pixel_boxes, image_size)
                else:
                    emb = self._crop_embed(array, pixel_boxes)
                emb = F.normalize(emb.float(), dim=-1)
                total = emb if total is None else total + emb
        return F.normalize(total, dim=-1).cpu()

    def embed_batch(
        self,
        images: Sequence[ImageLike],
        boxes_list: Sequence[torch.Tensor | np.ndarray],
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
                f"CLIPRegionTeacher.embed_batch: got {len(images)} images but {len(boxes_list)} "
                "box arrays; pass one (N_i, 4) array per image."
            )
        return [self.embed(image, boxes) for image, boxes in zip(images, boxes_list)]

    # ------------------------------------------------------------------ crop mode
    def _crop_embed(self, array: np.ndarray, pixel_boxes: torch.Tensor) -> torch.Tensor:
        """(N, 4) integer crop bounds -> (N, D) un-normalised CLIP embeddings.

        Crops are preprocessed and encoded ``batch_size`` at a time, so memory stays bounded
        for many boxes.
        """
        bounds = pixel_boxes.tolist()
        if self.crop_backend == "tensor":
            image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).to(self.device)
        out = []
        for start in range(0, len(bounds), self.batch_size):
            chunk = bounds[start : start + self.batch_size]
            if self.crop_backend == "pil":
                crops = [
                    self.preprocess(Image.fromarray(array[y0:y1, x0:x1]))
                    for x0, y0, x1, y1 in chunk
                ]
            else:
                crops = [
                    self._tensor_preprocess(image[:, y0:y1, x0:x1]) for x0, y0, x1, y1 in chunk
                ]
            batch = torch.stack(crops).to(self.device, self._dtype())
            out.append(self.model.encode_image(batch))
        return torch.cat(out)

    def _check_tensor_support(self) -> None:
        cfg = self.preprocess_cfg
        size = self._input_size()
        if not (
            cfg.resize_mode == "squash" or (cfg.resize_mode == "shortest" and size[0] == size[1])
        ):
            raise ValueError(
                f"CLIPRegionTeacher: crop_backend='tensor' supports resize_mode 'shortest' with a "
                f"square size or 'squash', the model uses {cfg.resize_mode!r} with size {size}; "
                "use crop_backend='pil'."
            )

    def _interpolation(self) -> InterpolationMode:
        if self.preprocess_cfg.interpolation == "bilinear":
            return InterpolationMode.BILINEAR
        return InterpolationMode.BICUBIC

    def _normalise_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """(3, h, w) uint8 -> float normalised with the model's mean/std."""
        mean = torch.tensor(self.preprocess_cfg.mean, device=image.device).view(3, 1, 1)
        std = torch.tensor(self.preprocess_cfg.std, device=image.device).view(3, 1, 1)
        return (image.float() / 255 - mean) / std

    def _tensor_preprocess(self, crop: torch.Tensor) -> torch.Tensor:
        """Torch re-implementation of open_clip's eval transform on a (3, h, w) uint8 crop."""
        size = self._input_size()
        interpolation = self._interpolation()
        if self.preprocess_cfg.resize_mode == "squash":
            crop = TF.resize(crop, list(size), interpolation=interpolation, antialias=True)
        else:
            crop = TF.resize(crop, [size[0]], interpolation=interpolation, antialias=True)
            crop = TF.center_crop(crop, list(size))
        return self._normalise_pixels(crop)

    # ------------------------------------------------------------------ dense mode
    def _check_dense_support(self) -> None:
        visual = self.model.visual
        if isinstance(visual, VisionTransformer):
            if visual.attn_pool is not None or visual.pool_type not in ("tok", "avg"):
                raise NotImplementedError(
                    "CLIPRegionTeacher(mode='dense'): VisionTransformer with an attentional "
                    f"pooler or pool_type={visual.pool_type!r} is not supported (only 'tok'/'avg' "
                    "pooling without attn_pool); use mode='crop'."
                )
            return
        if isinstance(visual, ModifiedResNet):
            return
        raise NotImplementedError(
            f"CLIPRegionTeacher(mode='dense') supports open_clip VisionTransformer and "
            f"ModifiedResNet image towers, not {type(visual).__name__}; use mode='crop'."
        )

    def _dense_features(self, array: np.ndarray) -> torch.Tensor:
        """Whole image -> final feature map (1, C, h, w) of the visual tower."""
        image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).to(self.device)
        image = TF.resize(
            image, list(self._input_size()), interpolation=self._interpolation(), antialias=True
        )
        x = self._normalise_pixels(image)[None].to(self._dtype())
        out = self.model.visual.forward_intermediates(x, indices=1, intermediates_only=True)
        return out["image_intermediates"][-1]

    def _dense_embed(
        self, feature_map: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """RoIAlign (N, 4) integer crop bounds on the feature map and apply the model's head.

        The regions are the same pixel crops as in crop mode (so a degenerate box still covers
        one pixel), rescaled to the resized image.
        """
        visual = self.model.visual
        in_h, in_w = self._input_size()
        ratio = torch.tensor([in_w / image_size[1], in_h / image_size[0]] * 2, dtype=torch.float64)
        rois = (boxes.to(torch.float64) * ratio).to(self.device, feature_map.dtype)
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
