"""SAM prompted with boxes: :class:`BoxPromptedSAM`, batched over the boxes of an image."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ovdet.utils.errors import InputError


@dataclass
class ImageEmbedding:
    """An image encoded by SAM once, for any number of box prompts."""

    features: torch.Tensor  # (1, C, h, w) SAM image embedding, on the SAM's device
    input_size: tuple[int, int]  # (H, W) after ResizeLongestSide (before padding)
    original_size: tuple[int, int]  # (H, W) of the image


@dataclass
class BoxMasks:
    """SAM's masks for N boxes of one image (CPU tensors).

    masks: (N, H, W) bool at the image's resolution; iou: (N,) float32 SAM's predicted IoU
    of each mask; low_res_logits: (N, h, w) float32 the decoder's logits (h = w = 256 for
    the released SAMs) when asked; logits: (N, H, W) float32 the logits upsampled to the
    image when asked (``masks == logits > 0``).
    """

    masks: torch.Tensor
    iou: torch.Tensor
    low_res_logits: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def _as_boxes(boxes: Any) -> np.ndarray:
    """(N, 4) XYXY as float64 numpy (as SamPredictor transforms them)."""
    if hasattr(boxes, "tensor") and isinstance(boxes.tensor, torch.Tensor):
        boxes = boxes.tensor  # detectron2 Boxes
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"SAM boxes must be (N, 4) XYXY, got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise InputError("SAM boxes hold NaN or infinite coordinates")
    return arr


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """XYXY boxes clipped to the image ([0, W] x [0, H]), corners put in order (x1 <= x2,
    y1 <= y2). A box left with zero width or height stays a (degenerate) prompt."""
    out = np.empty_like(boxes)
    xs = np.clip(boxes[:, [0, 2]], 0.0, float(width))
    ys = np.clip(boxes[:, [1, 3]], 0.0, float(height))
    out[:, 0], out[:, 2] = xs.min(1), xs.max(1)
    out[:, 1], out[:, 3] = ys.min(1), ys.max(1)
    return out


class BoxPromptedSAM:
    """Masks for the boxes of an image from SAM, all boxes in one batched decoder call.

    The image is encoded once (:meth:`embed`); the boxes are prompted in chunks of
    ``chunk_size`` through the prompt encoder and the mask decoder together
    (``multimask_output=False``), then upsampled to the image's resolution with SAM's own
    ``postprocess_masks``. Steps and numbers are those of ``segment_anything.SamPredictor``
    (``set_image`` + ``predict(box=..., multimask_output=False)`` box by box), only batched.

    Boxes are XYXY in the image's pixels; they are clipped to the image first (a box beyond
    the border is cut at it; corners swapped into order); a box of zero width or height is
    still prompted (SAM gives whatever mask it finds there, often small or empty).

    Args:
        sam: a ``segment_anything`` ``Sam`` (any of ``sam_model_registry``, or
            :func:`~ovdet.modeling.sam.build.build_small_sam`).
        device: where to run; default the SAM's device.
        chunk_size: boxes per decoder call (bounds memory: the decoder holds chunk_size
            copies of the image embedding, and the upsampling chunk_size masks at the
            encoder's input size).
        fp16: run the encoder and decoder under fp16 autocast on CUDA (default: on CUDA;
            never on the CPU). Masks are upsampled in float32.
    """

    def __init__(
        self,
        sam: torch.nn.Module,
        *,
        device: str | torch.device | None = None,
        chunk_size: int = 32,
        fp16: bool | None = None,
    ) -> None:
        from segment_anything.utils.transforms import ResizeLongestSide

        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        self.sam = sam.eval()
        self.chunk_size = chunk_size
        self.fp16 = fp16
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)
        if device is not None:
            self.to(device)

    @property
    def device(self) -> torch.device:
        return self.sam.device

    def to(self, device: str | torch.device) -> BoxPromptedSAM:
        """Move the SAM to ``device``; returns self."""
        self.sam.to(device)
        return self

    def _autocast(self):
        use = self.device.type == "cuda" and (self.fp16 is None or self.fp16)
        if use:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def embed(self, image: Any) -> ImageEmbedding:
        """Encode an image (HWC uint8 RGB array or tensor, a path, ... as
        :func:`ovdet.utils.image.load_image` reads it) once."""
        from ovdet.utils.image import load_image

        rgb = load_image(image)
        if self.sam.image_format != "RGB":
            rgb = np.ascontiguousarray(rgb[..., ::-1])
        resized = self.transform.apply_image(rgb)
        x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with self._autocast():
            features = self.sam.image_encoder(self.sam.preprocess(x))
        return ImageEmbedding(features, tuple(resized.shape[:2]), tuple(rgb.shape[:2]))

    @torch.no_grad()
    def predict_embedded(
        self,
        embedding: ImageEmbedding,
        boxes: Any,
        *,
        return_low_res: bool = False,
        return_logits: bool = False,
    ) -> BoxMasks:
        """Masks for ``boxes`` ((N, 4) XYXY, image pixels) of an encoded image."""
        height, width = embedding.original_size
        arr = clip_boxes(_as_boxes(boxes), height, width)
        n = len(arr)
        masks = torch.zeros((n, height, width), dtype=torch.bool)
        iou = torch.zeros((n,), dtype=torch.float32)
        low_side = 4 * embedding.features.shape[-1]  # the decoder's 4x upscaling
        low = torch.zeros((n, low_side, low_side)) if return_low_res else None
        full = torch.zeros((n, height, width)) if return_logits else None
        prompts = self.transform.apply_boxes(arr, embedding.original_size)
        prompts = torch.as_tensor(prompts, dtype=torch.float, device=self.device)
        image_pe = self.sam.prompt_encoder.get_dense_pe()
        for start in range(0, n, self.chunk_size):
            part = slice(start, start + self.chunk_size)
            with self._autocast():
                sparse, dense = self.sam.prompt_encoder(
                    points=None, boxes=prompts[part], masks=None
                )
                low_res, pred_iou = self.sam.mask_decoder(
                    image_embeddings=embedding.features,
                    image_pe=image_pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=False,
                )
            low_res = low_res.float()
            logits = self.sam.postprocess_masks(
                low_res, embedding.input_size, embedding.original_size
            )[:, 0]
            masks[part] = (logits > self.sam.mask_threshold).cpu()
            iou[part] = pred_iou[:, 0].float().cpu()
            if low is not None:
                low[part] = low_res[:, 0].cpu()
            if full is not None:
                full[part] = logits.cpu()
        return BoxMasks(masks, iou, low, full)

    def predict(
        self,
        image: Any,
        boxes: Any,
        *,
        return_low_res: bool = False,
        return_logits: bool = False,
    ) -> BoxMasks:
        """Masks for the boxes of an image: encode it once, then decode all boxes batched.

        Args:
            image: HWC uint8 RGB numpy array or tensor (or anything
                :func:`ovdet.utils.image.load_image` reads).
            boxes: (N, 4) XYXY in the image's pixels (numpy, tensor, list or detectron2
                ``Boxes``); N may be 0.
            return_low_res: also return the decoder's low-resolution logits.
            return_logits: also return the logits at the image's resolution.

        Returns:
            :class:`BoxMasks` (``masks`` (N, H, W) bool, ``iou`` (N,)); for N = 0 empty
            tensors of those shapes (the image is not encoded).

        Raises:
            InputError: boxes that are not (N, 4) or not finite; ImageReadError: a bad image.
        """
        arr = _as_boxes(boxes)
        if len(arr) == 0:
            from ovdet.utils.image import load_image

            height, width = load_image(image).shape[:2]
            encoder = self.sam.image_encoder
            side = 4 * (encoder.img_size // encoder.patch_embed.proj.kernel_size[0])
            return BoxMasks(
                torch.zeros((0, height, width), dtype=torch.bool),
                torch.zeros((0,)),
                torch.zeros((0, side, side)) if return_low_res else None,
                torch.zeros((0, height, width)) if return_logits else None,
            )
        return self.predict_embedded(
            self.embed(image), arr, return_low_res=return_low_res, return_logits=return_logits
        )
