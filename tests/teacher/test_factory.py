"""build_clip_region_teacher: one teacher class per mode, with the region-store identities."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from ovdet.teacher import (
    CLIPCropTeacher,
    CLIPDenseTeacher,
    CLIPTensorCropTeacher,
    RegionTeacher,
    build_clip_region_teacher,
)

VISION = dict(image_size=32, layers=1, width=32, head_width=16, patch_size=8)
TEXT = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)
BOXES = torch.tensor([[2.0, 3.0, 30.0, 40.0], [40.0, 10.0, 63.0, 47.0], [5.0, 5.0, 5.0, 9.0]])


def tiny_clip(seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    return CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(**VISION), text_cfg=CLIPTextCfg(**TEXT))


@pytest.fixture(scope="module")
def model() -> CLIP:
    return tiny_clip().eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


KINDS = [
    ("crop", "pil", CLIPCropTeacher, "crop-pil"),
    ("crop", "tensor", CLIPTensorCropTeacher, "crop-tensor"),
    ("dense", "pil", CLIPDenseTeacher, "dense"),
    ("dense", "tensor", CLIPDenseTeacher, "dense"),
]


@pytest.mark.parametrize("mode,backend,cls,suffix", KINDS)
def test_factory_kinds_identities_and_embeddings(model, image, mode, backend, cls, suffix):
    kwargs = dict(scales=(1.0, 1.5), device="cpu", model_identity="open_clip:tiny:tag=test")
    teacher = build_clip_region_teacher(
        model, mode=mode, crop_backend=backend, batch_size=2, **kwargs
    )
    assert type(teacher) is cls and isinstance(teacher, RegionTeacher)
    assert teacher.dim == 32 and teacher.scales == (1.0, 1.5)
    # the strings `ovdet extract-regions` has always stored: "<weights>:<mode>[-<backend>]"
    legacy = f"open_clip:tiny:tag=test:{mode}" + (f"-{backend}" if mode == "crop" else "")
    assert teacher.identity == legacy == f"open_clip:tiny:tag=test:{suffix}"
    # the factory only picks the class: the same embeddings as the class built directly
    direct = cls(model, **({"batch_size": 2} if cls is not CLIPDenseTeacher else {}), **kwargs)
    assert torch.equal(teacher.embed(image, BOXES), direct.embed(image, BOXES))


def test_factory_passes_preprocess_and_checks_its_options(model):
    preprocess = open_clip.image_transform(32, is_train=False)
    teacher = build_clip_region_teacher(model, preprocess, device="cpu")
    assert isinstance(teacher, CLIPCropTeacher) and teacher.preprocess is preprocess
    assert teacher.scales == (1.0, 1.5) and teacher.batch_size == 64
    with pytest.raises(ValueError, match="mode must be one of \\['crop', 'dense'\\], got 'grid'"):
        build_clip_region_teacher(model, mode="grid")
    with pytest.raises(ValueError, match="crop_backend must be one of .*got 'cv2'"):
        build_clip_region_teacher(model, crop_backend="cv2")


def test_default_identity_names_the_weights(model):
    first = build_clip_region_teacher(model, device="cpu").identity
    assert first.startswith("open_clip:CLIP:state-sha256=") and first.endswith(":crop-pil")
    assert build_clip_region_teacher(model, device="cpu").identity == first
    other = build_clip_region_teacher(tiny_clip(seed=1), device="cpu").identity
    assert other != first and other.endswith(":crop-pil")
    dense = build_clip_region_teacher(model, mode="dense", device="cpu").identity
    assert dense == first.replace(":crop-pil", ":dense")
