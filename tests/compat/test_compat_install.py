"""The compatibility layer: stand-in only without compiled ops, clear errors for missing ops."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import ovdet
from ovdet.compat import MissingCompiledOpError, detectron2_has_compiled_ops, ops

fallback_only = pytest.mark.skipif(
    detectron2_has_compiled_ops(), reason="compiled detectron2 provides every op"
)


def _compiled_extension_files() -> list[Path]:
    import detectron2

    return list(Path(detectron2.__file__).parent.glob("_C*.so")) + list(
        Path(detectron2.__file__).parent.glob("_C*.pyd")
    )


def test_stand_in_installed_only_without_compiled_ops():
    import detectron2
    import detectron2.modeling  # noqa: F401  (imports deform_conv/rotated_boxes -> _C)

    compiled = bool(_compiled_extension_files())
    assert detectron2_has_compiled_ops() is compiled
    is_stand_in = sys.modules["detectron2._C"] is ops
    assert is_stand_in is (not compiled)
    assert (detectron2._C is ops) is (not compiled)
    assert hasattr(torch.ops.detectron2, "nms_rotated")


def test_apply_is_idempotent():
    ovdet.compat.apply()
    ovdet.compat.apply()
    assert detectron2_has_compiled_ops() is bool(_compiled_extension_files())


@fallback_only
def test_roi_align_rotated_raises_missing_op_error():
    from detectron2.layers import ROIAlignRotated

    pooler = ROIAlignRotated((2, 2), spatial_scale=1.0, sampling_ratio=0)
    rois = torch.tensor([[0.0, 4.0, 4.0, 4.0, 2.0, 30.0]])
    with pytest.raises(MissingCompiledOpError, match="roi_align_rotated_forward") as info:
        pooler(torch.rand(1, 1, 8, 8), rois)
    message = str(info.value)
    assert "detectron2._C" in message and "from source" in message and "ROIAlign" in message
    assert info.value.op == "roi_align_rotated_forward"


@fallback_only
@pytest.mark.parametrize(
    "op", ["InstanceAnnotation", "COCOevalEvaluateImages", "COCOevalAccumulate"]
)
def test_fast_coco_eval_ops_point_to_pycocotools(op):
    import detectron2._C as d2_C

    with pytest.raises(MissingCompiledOpError, match=op) as info:
        getattr(d2_C, op)
    assert "use_fast_impl=False" in str(info.value)


def test_unknown_attribute_names_the_op_and_dunder_lookups_stay_attribute_errors():
    with pytest.raises(MissingCompiledOpError, match="'no_such_op'"):
        ops.no_such_op  # noqa: B018
    assert isinstance(MissingCompiledOpError("x"), RuntimeError)
    assert not hasattr(ops, "__wrapped__")
    assert ops.has_cuda() is False and "stand-in" in ops.get_cuda_version()
