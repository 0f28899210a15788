"""SAM prompted with boxes, as the mask source of any ovdet detector.

    from ovdet.modeling.sam import BoxPromptedSAM, build_sam, masks_for_detections
    sam = BoxPromptedSAM(build_sam("vit_b", "sam_vit_b_01ec64.pth"), device="cuda")
    out = sam.predict(rgb, boxes)      # masks (N, H, W) bool, iou (N,): one batched call
    det = masks_for_detections(sam, rgb, predictor.predict(rgb))   # det["masks"]
    OVPredictor.from_pretrained(..., sam=sam)    # predict() returns SAM's masks

* :mod:`.box_prompt`: :class:`BoxPromptedSAM` -- the image encoded once, all its boxes
  decoded in batched chunks (``multimask_output=False``), the exact steps of
  ``segment_anything.SamPredictor`` (same numbers, box by box vs batched).
* :mod:`.detections`: :func:`masks_for_detections` -- detectron2 ``Instances`` or a
  predictor's output dict filled with SAM's masks and predicted IoUs.
* :mod:`.mask_source`: :func:`with_sam_masks` -- SAM as the mask head of any detector, as
  a config choice (``model = L(with_sam_masks)(model=..., sam="ov-shapes-small-sam")``).
* :mod:`.build`: SAMs of ``sam_model_registry`` from a checkpoint, a tiny random SAM
  (:func:`build_small_sam`), the shipped small SAM (``ov-shapes-small-sam``,
  ``ovdet/assets/sam``) and the ``--sam`` specs of ``ovdet detect`` / ``pseudo-label``;
* :mod:`.pretrain`: ``ovdet pretrain-sam`` (the small SAM on base-class masks).

See docs/sam.md.
"""

from .box_prompt import BoxMasks, BoxPromptedSAM, ImageEmbedding, clip_boxes
from .build import (
    SAM_TYPES,
    build_sam,
    build_small_sam,
    infer_sam_type,
    load_sam_state_dict,
    parse_sam_spec,
    sam_from_spec,
    shipped_sam_names,
)
from .detections import masks_for_detections
from .mask_source import SAMMaskSource, with_sam_masks

__all__ = [
    "SAM_TYPES",
    "BoxMasks",
    "BoxPromptedSAM",
    "ImageEmbedding",
    "SAMMaskSource",
    "build_sam",
    "build_small_sam",
    "clip_boxes",
    "infer_sam_type",
    "load_sam_state_dict",
    "masks_for_detections",
    "parse_sam_spec",
    "sam_from_spec",
    "shipped_sam_names",
    "with_sam_masks",
]
