"""Import compatibility for detectron2.

ovdet runs on two kinds of detectron2 installs:

* upstream, built from source with its compiled ops (``detectron2._C``): this module then
  changes nothing at all;
* the Python files of detectron2 v0.6 without compiled ops (the ``pb1-detectron2`` sdist,
  installed by ``tools/install_detectron2.py`` where GitHub cannot be reached).

For the second, :func:`apply` (run once when :mod:`ovdet` is imported, before any
detectron2 module) makes detectron2 importable and correct:

1. ``detectron2._C`` is replaced by :mod:`ovdet.compat.ops`, a stand-in whose ops are written
   in PyTorch/torchvision (deformable convolution, rotated-box IoU and NMS) or raise a
   :class:`MissingCompiledOpError` naming the op and how to get it. The op that v0.6 calls
   through ``torch.ops.detectron2`` (``nms_rotated``) is registered there, and v0.6's
   CUDA-only deformable-convolution autograd functions are replaced by ones that call the
   stand-in on any device (:mod:`ovdet.compat.deform_conv`), so those layers train on CPU.
2. Pillow >= 10 removed ``Image.LINEAR``, which v0.6 uses as a default argument at import
   time; the alias (identical to ``Image.BILINEAR`` in every Pillow that had it) is restored.
3. NumPy >= 1.24 removed ``np.bool``, which v0.6's ``polygons_to_bitmask`` uses for empty
   polygon lists; that function is replaced by a corrected copy of its own logic.

Import :mod:`ovdet` (or ``ovdet.compat``) before importing ``detectron2.modeling`` or
``detectron2.layers`` yourself.
"""

from __future__ import annotations

import importlib.util
import sys

from ovdet.compat.errors import MissingCompiledOpError

__all__ = ["apply", "detectron2_has_compiled_ops", "MissingCompiledOpError"]

_APPLIED = False


def detectron2_has_compiled_ops() -> bool:
    """True when the installed detectron2 ships its compiled ``_C`` extension."""
    if "detectron2._C" in sys.modules:
        return not getattr(sys.modules["detectron2._C"], "OVDET_STANDIN", False)
    try:
        return importlib.util.find_spec("detectron2._C") is not None
    except (ImportError, ValueError):
        return False


def _patch_pillow() -> None:
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR  # removed alias; same value in every Pillow that had it


def _patch_numpy_bool() -> None:
    import numpy as np

    if hasattr(np, "bool") and np.bool is bool:  # numpy < 1.24 alias still present
        return
    import detectron2.structures as structures
    import detectron2.structures.masks as masks_mod

    original = masks_mod.polygons_to_bitmask

    def polygons_to_bitmask(polygons, height: int, width: int):
        if len(polygons) == 0:
            return np.zeros((height, width), dtype=bool)
        return original(polygons, height, width)

    polygons_to_bitmask.__doc__ = original.__doc__
    masks_mod.polygons_to_bitmask = polygons_to_bitmask
    # detectron2.data.detection_utils imports the name from detectron2.structures; it is not
    # imported yet (apply() runs first), so patching the package re-export is enough.
    structures.polygons_to_bitmask = polygons_to_bitmask


def _patch_deform_conv() -> None:
    import detectron2.layers.deform_conv as d2_deform_conv

    from ovdet.compat import deform_conv

    # DeformConv/ModulatedDeformConv.forward look these module globals up at call time.
    d2_deform_conv.deform_conv = deform_conv.deform_conv
    d2_deform_conv.modulated_deform_conv = deform_conv.modulated_deform_conv


def apply() -> None:
    """Make a detectron2 without compiled ops importable; a no-op for a compiled one."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    if importlib.util.find_spec("detectron2") is None:
        return  # detectron2 missing: ovdet modules that need it raise on their own import
    if detectron2_has_compiled_ops():
        return
    _patch_pillow()
    import detectron2

    from ovdet.compat import ops

    sys.modules["detectron2._C"] = ops
    detectron2._C = ops
    ops.register_torch_ops()
    _patch_numpy_bool()
    _patch_deform_conv()
