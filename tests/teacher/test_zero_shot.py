"""Zero-shot classifier construction and base/novel accuracy."""

from __future__ import annotations

import pytest
import torch

from ovdet.teacher.small_clip import create_small_clip
from ovdet.teacher.zero_shot import encode_images, zero_shot_accuracy
from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings

NAMES = ["red circle", "blue star", "green square"]


def test_zero_shot_accuracy_splits_base_and_novel():
    class_emb = torch.eye(3)
    # Crops of classes 0, 0, 1, 2, 2 ; predictions 0, 1, 1, 2, 0.
    image_emb = torch.tensor([[1.0, 0, 0], [0.1, 0.9, 0], [0, 1, 0], [0, 0, 1], [0.8, 0, 0.2]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    out = zero_shot_accuracy(image_emb, labels, class_emb, NAMES, novel=["green square"])
    assert out["top1_all"] == pytest.approx(3 / 5)
    assert out["top1_base"] == pytest.approx(2 / 3)
    assert out["top1_novel"] == pytest.approx(1 / 2)
    assert (out["num_all"], out["num_base"], out["num_novel"]) == (5, 3, 2)
    assert out["chance"] == pytest.approx(1 / 3)
    assert out["per_class"] == {"red circle": 0.5, "blue star": 1.0, "green square": 0.5}

    no_novel = zero_shot_accuracy(image_emb, labels, class_emb, NAMES)
    assert no_novel["top1_novel"] is None and no_novel["top1_base"] == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="purple star"):
        zero_shot_accuracy(image_emb, labels, class_emb, NAMES, novel=["purple star"])
    with pytest.raises(ValueError, match="labels"):
        zero_shot_accuracy(image_emb, labels[:2], class_emb, NAMES)


def test_class_embeddings_of_a_lent_model_and_encode_images_on_small_clip():
    """Zero-shot evaluation builds its classifier with ovdet.text on the model being trained."""
    clip = create_small_clip(image_size=32)
    clip.model.train()
    encoder = OpenCLIPTextEncoder(clip.config_name, model=clip.model, tokenizer=clip.tokenizer)
    assert encoder.module is clip.model  # lent, not copied
    emb = build_class_embeddings(encoder, NAMES, ["a {}.", "a photo of a {}."])
    assert emb.shape == (3, 128) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert clip.model.training  # mode restored
    # Template ensemble = normalised mean of the per-template normalised embeddings.
    with torch.no_grad():
        clip.model.eval()
        per = [
            clip.model.encode_text(clip.tokenizer([t.format(NAMES[1])]), normalize=True)
            for t in ("a {}.", "a photo of a {}.")
        ]
        ref = torch.nn.functional.normalize(sum(per), dim=-1)[0]
    assert torch.allclose(emb[1], ref, atol=1e-5)
    clip.model.eval()
    build_class_embeddings(encoder, NAMES, ["a {}."])
    assert not clip.model.training  # eval mode restored too

    batches = [torch.rand(2, 3, 32, 32), torch.rand(3, 3, 32, 32)]
    img = encode_images(clip.model, batches)
    assert img.shape == (5, 128)
    with pytest.raises(ValueError, match="\\{\\}"):
        build_class_embeddings(encoder, NAMES, ["no placeholder"])
