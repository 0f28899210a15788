"""CLIP region teachers: parity with open_clip's own preprocessing, tensor crops, dense mode."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from PIL import Image

from ovdet.teacher import CLIPCropTeacher, CLIPDenseTeacher, CLIPTensorCropTeacher

TEXT_CFG = CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)


def tiny_vit(**vision_kwargs) -> CLIP:
    torch.manual_seed(0)
    cfg = CLIPVisionCfg(image_size=32, layers=2, width=64, patch_size=8, **vision_kwargs)
    return CLIP(embed_dim=32, vision_cfg=cfg, text_cfg=TEXT_CFG).eval()


def tiny_resnet() -> CLIP:
    torch.manual_seed(0)
    cfg = CLIPVisionCfg(image_size=64, layers=(1, 1, 1, 1), width=8)
    return CLIP(embed_dim=32, vision_cfg=cfg, text_cfg=TEXT_CFG).eval()


@pytest.fixture(scope="module")
def vit() -> CLIP:
    return tiny_vit()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)  # H=48, W=64


BOXES = torch.tensor(
    [
        [3.0, 4.0, 30.0, 40.0],
        [10.5, 2.2, 63.0, 47.9],  # nearly the whole image, fractional bounds
        [0.0, 0.0, 5.0, 5.0],  # at the corner
        [20.0, 20.0, 20.0, 30.0],  # zero width -> one pixel column
    ]
)


def reference_embedding(model, preprocess, image, crop_xyxy) -> torch.Tensor:
    """normalise(model.encode_image(preprocess(PIL crop))) for one integer crop."""
    crop = Image.fromarray(image).crop(tuple(crop_xyxy))
    with torch.no_grad():
        return F.normalize(model.encode_image(preprocess(crop)[None]), dim=-1)[0]


def test_crop_mode_matches_open_clip_preprocess_exactly(vit, image):
    preprocess = open_clip.image_transform(vit.visual.image_size, is_train=False)
    teacher = CLIPCropTeacher(vit, preprocess=preprocess, scales=(1.0,), device="cpu")
    out = teacher.embed(image, BOXES)
    # crops written by hand: floor/ceil of the clipped boxes
    crops = [(3, 4, 30, 40), (10, 2, 63, 48), (0, 0, 5, 5), (20, 20, 21, 30)]
    expected = torch.stack([reference_embedding(vit, preprocess, image, c) for c in crops])
    assert out.shape == (4, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_default_preprocess_and_input_types_agree(vit, image):
    preprocess = open_clip.image_transform(vit.visual.image_size, is_train=False)
    explicit = CLIPCropTeacher(vit, preprocess=preprocess, scales=(1.0,), device="cpu").embed(
        image, BOXES
    )
    # preprocess built from the model's own cfg
    default = CLIPCropTeacher(vit, scales=(1.0,), device="cpu")
    torch.testing.assert_close(default.embed(image, BOXES), explicit, atol=1e-6, rtol=0)
    chw = torch.from_numpy(image).permute(2, 0, 1)
    torch.testing.assert_close(default.embed(chw, BOXES), explicit, atol=1e-6, rtol=0)
    torch.testing.assert_close(default.embed(chw / 255.0, BOXES), explicit, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        default.embed(Image.fromarray(image), BOXES.numpy()), explicit, atol=1e-6, rtol=0
    )


def test_two_scales_sum_normalised_embeddings(vit, image):
    preprocess = open_clip.image_transform(vit.visual.image_size, is_train=False)
    teacher = CLIPCropTeacher(vit, preprocess=preprocess, scales=(1.0, 1.5), device="cpu")
    box = torch.tensor([[10.0, 10.0, 30.0, 20.0]])
    out = teacher.embed(image, box)
    # 1.5x: centre (20, 15), half sizes 15 x 7.5 -> (5, 7.5, 35, 22.5) -> pixels (5, 7, 35, 23)
    v1 = reference_embedding(vit, preprocess, image, (10, 10, 30, 20))
    v15 = reference_embedding(vit, preprocess, image, (5, 7, 35, 23))
    torch.testing.assert_close(out[0], F.normalize(v1 + v15, dim=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(1))


def test_embed_batch_and_empty_boxes(vit, image):
    teacher = CLIPCropTeacher(vit, device="cpu", batch_size=3)
    outs = teacher.embed_batch([image, image], [BOXES, torch.zeros(0, 4)])
    assert outs[0].shape == (4, 32) and outs[1].shape == (0, 32)
    torch.testing.assert_close(outs[0], teacher.embed(image, BOXES))
    with pytest.raises(ValueError, match="2 images but 1 box"):
        teacher.embed_batch([image, image], [BOXES])


def test_tensor_backend_approximates_exact_path(vit, image):
    exact = CLIPCropTeacher(vit, device="cpu").embed(image, BOXES)
    fast = CLIPTensorCropTeacher(vit, device="cpu").embed(image, BOXES)
    assert ((exact * fast).sum(dim=1) > 0.999).all()


def test_invalid_inputs_are_named(vit, image):
    teacher = CLIPCropTeacher(vit, device="cpu")
    with pytest.raises(ValueError, match="CLIPCropTeacher: box 1"):
        teacher.embed(image, torch.tensor([[0.0, 0.0, 5.0, 5.0], [10.0, 0.0, 5.0, 5.0]]))
    with pytest.raises(ValueError, match="box 0"):
        teacher.embed(image, torch.tensor([[70.0, 0.0, 80.0, 5.0]]))  # right of the image
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        teacher.embed(torch.full((3, 8, 8), 200.0), torch.tensor([[0.0, 0.0, 4.0, 4.0]]))
    with pytest.raises(ValueError, match="CLIPCropTeacher: batch_size must be >= 1"):
        CLIPCropTeacher(vit, batch_size=0)
    with pytest.raises(ValueError, match="CLIPDenseTeacher: scales must be"):
        CLIPDenseTeacher(vit, scales=(1.0, -1.5))
    with pytest.raises(TypeError, match="CLIPTensorCropTeacher: model must be an open_clip model"):
        CLIPTensorCropTeacher(torch.nn.Linear(2, 2))


def test_dense_vit_whole_image_box_equals_avg_pool_output(image):
    # A whole-image box on an image already at the input size: RoIAlign averages every patch
    # token, which is exactly the model's own 'avg' pooling.
    model = tiny_vit(pool_type="avg")
    square = image[:32, :32]
    teacher = CLIPDenseTeacher(model, scales=(1.0,), device="cpu")
    out = teacher.embed(square, torch.tensor([[0.0, 0.0, 32.0, 32.0], [4.0, 4.0, 20.0, 12.0]]))
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(3, 1, 1)
    pixels = (torch.from_numpy(square).permute(2, 0, 1).float() / 255 - mean) / std
    with torch.no_grad():
        expected = F.normalize(model.encode_image(pixels[None]), dim=-1)[0]
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=0)
    assert out.shape == (2, 32)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_dense_resnet_whole_image_box_equals_forward(image):
    model = tiny_resnet()
    square = np.ascontiguousarray(np.concatenate([image, image[:16]], axis=0)[:, :64])  # 64x64
    teacher = CLIPDenseTeacher(model, scales=(1.0,), device="cpu")
    out = teacher.embed(square, torch.tensor([[0.0, 0.0, 64.0, 64.0], [0.0, 0.0, 9.0, 9.0]]))
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(3, 1, 1)
    pixels = (torch.from_numpy(square).permute(2, 0, 1).float() / 255 - mean) / std
    with torch.no_grad():
        expected = F.normalize(model.encode_image(pixels[None]), dim=-1)[0]
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=0)
    assert torch.isfinite(out).all()


def test_dense_mode_rejects_unsupported_tower():
    model = tiny_vit(attentional_pool=True, attn_pooler_queries=4, attn_pooler_heads=2)
    with pytest.raises(NotImplementedError, match="attentional pooler"):
        CLIPDenseTeacher(model, device="cpu")
