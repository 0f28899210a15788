"""OnlineRegionTeacher: targets of the augmented training images, in the model's input format."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from detectron2.data import transforms as T
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from ovdet.teacher import CLIPCropTeacher
from ovdet.teacher.online import OnlineRegionTeacher


@pytest.fixture(scope="module")
def teacher() -> CLIPCropTeacher:
    torch.manual_seed(0)
    model = CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(image_size=32, layers=1, width=32, head_width=16, patch_size=8),
        text_cfg=CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    )
    preprocess = open_clip.image_transform(32, is_train=False)
    return CLIPCropTeacher(model, preprocess=preprocess, device="cpu")


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


BOXES = torch.tensor([[2.0, 3.0, 30.0, 40.0], [40.0, 10.0, 70.0, 52.0], [5.0, 5.0, 5.0, 9.0]])


def test_bgr_float_input_equals_teacher_on_rgb(teacher, rgb):
    online = OnlineRegionTeacher(teacher, input_format="BGR")
    bgr_float = torch.from_numpy(rgb[:, :, ::-1].copy()).permute(2, 0, 1).float()
    rgb_uint8 = torch.from_numpy(rgb).permute(2, 0, 1)
    batch = [
        {"image": bgr_float, "teacher_proposals": BOXES},
        {"image": bgr_float, "teacher_proposals": torch.zeros(0, 4)},
    ]
    out = online(batch)
    clipped = BOXES.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(0, 64)
    clipped[:, 1::2] = clipped[:, 1::2].clamp(0, 48)
    expected = teacher.embed(rgb, clipped)
    assert [tuple(t.shape) for t in out] == [(3, 32), (0, 32)]
    torch.testing.assert_close(out[0], expected)
    # RGB models: no channel flip
    out_rgb = OnlineRegionTeacher(teacher, input_format="RGB")([batch[0] | {"image": rgb_uint8}])
    torch.testing.assert_close(out_rgb[0], expected)
    # the wrong channel order gives other targets: the flip matters
    assert not torch.allclose(
        OnlineRegionTeacher(teacher, input_format="RGB")(batch[:1])[0], expected
    )


def test_targets_follow_the_augmented_image(teacher, rgb):
    """Boxes in augmented coordinates (as the mapper delivers them) crop the augmented image."""
    augs = T.AugmentationList([T.ResizeShortestEdge(72, 1000), T.RandomFlip(prob=1.0)])
    aug_input = T.AugInput(rgb[:, :, ::-1].copy())
    transforms = augs(aug_input)
    boxes = torch.as_tensor(transforms.apply_box(BOXES[:2].numpy()), dtype=torch.float32)
    image = torch.from_numpy(aug_input.image.copy()).permute(2, 0, 1)
    out = OnlineRegionTeacher(teacher)([{"image": image, "teacher_proposals": boxes}])[0]
    augmented_rgb = np.ascontiguousarray(aug_input.image[:, :, ::-1])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, augmented_rgb.shape[1])
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, augmented_rgb.shape[0])
    torch.testing.assert_close(out, teacher.embed(augmented_rgb, boxes))


def test_errors_name_the_input(teacher, rgb):
    online = OnlineRegionTeacher(teacher)
    image = torch.from_numpy(rgb).permute(2, 0, 1)
    with pytest.raises(KeyError, match=r"batched_inputs\[1\] has no 'teacher_proposals'"):
        online([{"image": image, "teacher_proposals": BOXES}, {"image": image}])
    with pytest.raises(ValueError, match=r"batched_inputs\[0\]\['image'\] must be a \(3, H, W\)"):
        online([{"image": image[0], "teacher_proposals": BOXES}])
    with pytest.raises(ValueError, match="input_format must be"):
        OnlineRegionTeacher(teacher, input_format="L")
