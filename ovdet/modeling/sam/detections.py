"""SAM as the mask source of any detector: :func:`masks_for_detections`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .box_prompt import BoxPromptedSAM


def masks_for_detections(sam: BoxPromptedSAM, image: Any, detections: Any) -> Any:
    """Fill a detector's detections of one image with SAM's masks of their boxes.

    The one place where detections get SAM masks (``OVPredictor(sam=...)``, ``ovdet detect
    --sam``, pseudo-labelling). Boxes must be XYXY in the pixels of ``image`` (the original
    image, not the detector's resized input).

    Args:
        sam: the box-prompted SAM (a bare ``segment_anything`` ``Sam`` is wrapped in one).
        image: the image (HWC uint8 RGB numpy array or tensor, or anything
            :func:`ovdet.utils.image.load_image` reads).
        detections: detectron2 ``Instances`` with ``pred_boxes``, or a dict with ``"boxes"``
            ((N, 4), e.g. :meth:`ovdet.predictor.OVPredictor.predict`'s output).

    Returns:
        The same kind of object: ``Instances`` with ``pred_masks`` ((N, H, W) bool tensor,
        on the instances' device) and ``mask_scores`` ((N,) float32, SAM's predicted IoU)
        set; or a new dict with ``"masks"`` ((N, H, W) bool numpy) and ``"mask_scores"``
        ((N,) float32 numpy), other keys kept. Any masks the detector made are replaced.

    Raises:
        TypeError: detections of another kind; InputError: bad boxes.
    """
    if not isinstance(sam, BoxPromptedSAM):
        sam = BoxPromptedSAM(sam)
    if isinstance(detections, dict):
        if "boxes" not in detections:
            raise TypeError("masks_for_detections: the detections dict has no 'boxes'")
        out = sam.predict(image, detections["boxes"])
        return dict(
            detections,
            masks=out.masks.numpy().astype(bool),
            mask_scores=out.iou.numpy().astype(np.float32),
        )
    if hasattr(detections, "has") and detections.has("pred_boxes"):
        out = sam.predict(image, detections.pred_boxes.tensor)
        device = detections.pred_boxes.tensor.device
        detections.pred_masks = out.masks.to(device)
        detections.mask_scores = out.iou.to(device)
        return detections
    raise TypeError(
        "masks_for_detections takes detectron2 Instances with pred_boxes or a dict with "
        f"'boxes', got {type(detections).__name__}"
    )
