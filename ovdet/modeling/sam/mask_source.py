"""SAM as the mask head of any ovdet detector, as a config choice: :func:`with_sam_masks`.

    model = L(with_sam_masks)(model=<the detector's config>, sam="ov-shapes-small-sam")

The detector is built as usual and keeps its weights and state_dict (SAM's are not part of
it: a checkpoint of the detector loads unchanged, and SAM is loaded from its own spec). In eval
mode a forward hook replaces the ``pred_masks`` of the detector's final detections with SAM's
masks of their boxes (:func:`~ovdet.modeling.sam.detections.masks_for_detections`, one
batched decoder call per image) and adds ``mask_scores`` (SAM's predicted IoU). Training is
untouched: the detector's own losses, its own mask head if it has one.

SAM is prompted on the image the boxes belong to, at its original resolution: the input's
``file_name`` when it is readable (as ``OVPredictor`` and ``ovdet detect`` do), else the
input ``image`` tensor converted to RGB and resized to ``height`` x ``width``.

Used by the OV-Shapes benchmark's ``sam_boxes`` method (docs/sam.md).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from .box_prompt import BoxPromptedSAM
from .detections import masks_for_detections

__all__ = ["SAMMaskSource", "with_sam_masks"]

logger = logging.getLogger(__name__)


class SAMMaskSource:
    """Fills a detector's eval outputs with SAM's masks (a forward hook; not an ``nn.Module``,
    so SAM's weights stay out of the detector's state_dict).

    Args:
        sam: a ``--sam`` spec (a shipped name such as ``ov-shapes-small-sam``,
            ``TYPE:CHECKPOINT`` or a checkpoint path; loaded at once, so a bad spec fails
            when the model is built), a ``segment_anything`` ``Sam`` or a
            :class:`BoxPromptedSAM`.
        chunk_size: boxes per decoder call.
        input_format: channel order of the inputs' ``image`` tensors ("BGR" or "RGB"; the
            detector's ``input_format``), for inputs without a readable ``file_name``.
    """

    def __init__(self, sam: Any, *, chunk_size: int = 32, input_format: str = "BGR") -> None:
        identity: dict[str, Any] | None = None
        if isinstance(sam, (str, os.PathLike)):
            from .build import sam_from_spec

            sam, identity = sam_from_spec(str(sam))
        self.sam = (
            sam if isinstance(sam, BoxPromptedSAM) else BoxPromptedSAM(sam, chunk_size=chunk_size)
        )
        self.identity = identity
        if input_format not in ("BGR", "RGB"):
            raise ValueError(
                f"SAMMaskSource: input_format must be 'BGR' or 'RGB', got {input_format!r}"
            )
        self.input_format = input_format

    def image_of(self, item: dict) -> np.ndarray:
        """The RGB image (H, W, 3) uint8 at the input's original resolution."""
        from ovdet.utils.image import load_image

        name = item.get("file_name")
        if name and os.path.isfile(name):
            return load_image(name)
        image = item["image"]
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(
                f"SAMMaskSource: input image must be (3, H, W), got {tuple(image.shape)}"
            )
        if self.input_format == "BGR":
            image = image.flip(0)
        height = int(item.get("height", image.shape[1]))
        width = int(item.get("width", image.shape[2]))
        image = image.float()
        if (height, width) != tuple(image.shape[1:]):
            image = torch.nn.functional.interpolate(
                image[None], size=(height, width), mode="bilinear", align_corners=False
            )[0]
        return image.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    def __call__(self, module: torch.nn.Module, args: tuple, output: Any) -> Any:
        """Forward hook: in eval mode, SAM's masks for every image's ``instances``."""
        if module.training or not isinstance(output, list):
            return output
        batched_inputs = args[0]
        device = next(module.parameters()).device
        if self.sam.device != device:
            self.sam.to(device)
        for item, result in zip(batched_inputs, output):
            instances = result.get("instances") if isinstance(result, dict) else None
            if instances is None:
                continue
            if len(instances) == 0:
                h, w = instances.image_size
                instances.pred_masks = torch.zeros((0, h, w), dtype=torch.bool, device=device)
                instances.mask_scores = torch.zeros((0,), device=device)
                continue
            masks_for_detections(self.sam, self.image_of(item), instances)
        return output


def with_sam_masks(model: torch.nn.Module, sam: Any, *, chunk_size: int = 32) -> torch.nn.Module:
    """``model`` with SAM's masks of its final boxes as its ``pred_masks`` in eval mode.

    Args:
        model: any ovdet detector (``OVRCNN``, the ensembles, ``GroundingRCNN``): a module
            whose eval forward returns ``[{"instances": Instances}]`` with ``pred_boxes`` in
            the inputs' original pixels.
        sam: see :class:`SAMMaskSource`.
        chunk_size: boxes per decoder call.

    Returns:
        The same model object, with the hook registered (``model.sam_mask_source``).
    """
    source = SAMMaskSource(
        sam, chunk_size=chunk_size, input_format=getattr(model, "input_format", "BGR")
    )
    model.register_forward_hook(source)
    model.sam_mask_source = source
    logger.info("masks of %s from SAM %s", type(model).__name__, source.identity or "(object)")
    return model
