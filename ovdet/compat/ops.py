"""Stand-in for ``detectron2._C`` on a detectron2 install without compiled ops.

Installed as ``sys.modules["detectron2._C"]`` by :func:`ovdet.compat.apply`. The ops that can
be written with PyTorch/torchvision are provided with the compiled ops' signatures:

* deformable convolution (``deform_conv_*``, ``modulated_deform_conv_*``), on
  :func:`torchvision.ops.deform_conv2d` (see :mod:`ovdet.compat.deform_conv`);
* rotated boxes (``box_iou_rotated``, ``nms_rotated``), in PyTorch (see
  :mod:`ovdet.compat.rotated_boxes`).

Every other attribute (rotated ROIAlign, the fast COCO evaluation) raises
:class:`~ovdet.compat.errors.MissingCompiledOpError` naming the op and what to do instead.
"""

from __future__ import annotations

from ovdet.compat.deform_conv import (
    deform_conv_backward_filter,
    deform_conv_backward_input,
    deform_conv_forward,
    modulated_deform_conv_backward,
    modulated_deform_conv_forward,
)
from ovdet.compat.errors import MissingCompiledOpError
from ovdet.compat.rotated_boxes import box_iou_rotated, nms_rotated, register_nms_rotated_op

__all__ = [
    "OVDET_STANDIN",
    "box_iou_rotated",
    "nms_rotated",
    "deform_conv_forward",
    "deform_conv_backward_input",
    "deform_conv_backward_filter",
    "modulated_deform_conv_forward",
    "modulated_deform_conv_backward",
    "get_compiler_version",
    "get_cuda_version",
    "has_cuda",
    "register_torch_ops",
]

OVDET_STANDIN = True

_FAST_COCOEVAL_HINT = (
    "evaluate with pycocotools' COCOeval instead: "
    "detectron2.evaluation.COCOEvaluator(..., use_fast_impl=False)"
)
_ROTATED_ROI_HINT = (
    "use axis-aligned boxes (ROIAlign / ROI_BOX_HEAD.POOLER_TYPE='ROIAlignV2') "
    "instead of rotated ones"
)
_HINTS = {
    "COCOevalEvaluateImages": _FAST_COCOEVAL_HINT,
    "COCOevalAccumulate": _FAST_COCOEVAL_HINT,
    "InstanceAnnotation": _FAST_COCOEVAL_HINT,
    "roi_align_rotated_forward": _ROTATED_ROI_HINT,
    "roi_align_rotated_backward": _ROTATED_ROI_HINT,
}


def get_compiler_version() -> str:
    return "none (ovdet Python stand-in)"


def get_cuda_version() -> str:
    return "none (ovdet Python stand-in)"


def has_cuda() -> bool:
    return False


def register_torch_ops() -> None:
    """Register the ops detectron2 v0.6 reaches through ``torch.ops.detectron2``.

    Only ``nms_rotated`` (called by ``detectron2.layers.nms_rotated``). Idempotent.
    """
    register_nms_rotated_op()


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise MissingCompiledOpError(name, _HINTS.get(name, ""))
