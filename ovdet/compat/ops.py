"""Stand-in for ``detectron2._C`` on a detectron2 install without compiled ops.

Installed as ``sys.modules["detectron2._C"]`` by :func:`ovdet.compat.apply`. Ops that can be
written with PyTorch/torchvision are implemented here with the compiled ops' signatures;
every other attribute raises :class:`~ovdet.compat.errors.MissingCompiledOpError` naming it.
"""

from __future__ import annotations

from ovdet.compat.errors import MissingCompiledOpError

OVDET_STANDIN = True

_HINTS = {
    "COCOevalEvaluateImages": "use pycocotools' COCOeval (COCOEvaluator(..., use_fast_impl=False))",
    "COCOevalAccumulate": "use pycocotools' COCOeval (COCOEvaluator(..., use_fast_impl=False))",
    "InstanceAnnotation": "use pycocotools' COCOeval (COCOEvaluator(..., use_fast_impl=False))",
    "roi_align_rotated_forward": "use axis-aligned boxes (ROIAlign) instead of rotated ones",
    "roi_align_rotated_backward": "use axis-aligned boxes (ROIAlign) instead of rotated ones",
}


def get_compiler_version() -> str:
    return "none (ovdet Python stand-in)"


def get_cuda_version() -> str:
    return "none (ovdet Python stand-in)"


def has_cuda() -> bool:
    return False


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise MissingCompiledOpError(name, _HINTS.get(name, ""))
