"""HierKD global objective: hand-computed InfoNCE, pooling, degenerate batches, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ovdet.methods.hierkd import HierKDGlobalDistillation


def hand_info_nce(image, text, scale):
    """Symmetric InfoNCE with explicit loops over (B, D) normalised rows."""
    b = len(image)
    logits = [
        [scale * sum(x * y for x, y in zip(image[i], text[j])) for j in range(b)] for i in range(b)
    ]
    rows = sum(math.log(sum(math.exp(v) for v in logits[i])) - logits[i][i] for i in range(b))
    cols = sum(
        math.log(sum(math.exp(logits[i][j]) for i in range(b))) - logits[j][j] for j in range(b)
    )
    return (rows / b + cols / b) / 2


def features(batch=3, channels=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "p3": torch.randn(batch, channels, 4, 4, generator=g),
        "p4": torch.randn(batch, channels, 2, 2, generator=g),
    }


def test_mean_pooling_concat_embedding_and_loss_by_hand():
    torch.manual_seed(0)
    module = HierKDGlobalDistillation({"p3": 4, "p4": 4}, 6, pooling="mean", temperature=0.5)
    feats = features()
    text = F.normalize(torch.randn(3, 6), dim=-1)
    # expected embedding: concat of per-level spatial means, then the linear projection
    pooled = torch.cat([feats["p3"].mean(dim=(2, 3)), feats["p4"].mean(dim=(2, 3))], dim=1)
    g = pooled @ module.proj.weight.T + module.proj.bias
    g = g / g.norm(dim=1, keepdim=True)
    torch.testing.assert_close(module.embed(feats), g)
    expected = hand_info_nce(g.tolist(), text.tolist(), 1 / 0.5)
    out = module(feats, text)
    assert set(out) == {"loss_hierkd_global"}
    assert out["loss_hierkd_global"].item() == pytest.approx(expected, rel=1e-5)


def test_int_in_channels_averages_levels_and_weight_applies():
    torch.manual_seed(0)
    module = HierKDGlobalDistillation(4, 6, pooling="mean", weight=2.0)
    feats = features()
    pooled = (feats["p3"].mean(dim=(2, 3)) + feats["p4"].mean(dim=(2, 3))) / 2
    g = F.normalize(module.proj(pooled), dim=-1)
    torch.testing.assert_close(module.embed(feats), g)
    text = F.normalize(torch.randn(3, 6), dim=-1)
    expected = 2.0 * hand_info_nce(g.tolist(), text.tolist(), 1 / 0.07)
    assert module(feats, text)["loss_hierkd_global"].item() == pytest.approx(expected, rel=1e-5)


def test_attention_pooling_by_hand():
    torch.manual_seed(0)
    module = HierKDGlobalDistillation({"p3": 4}, 6, pooling="attention")
    x = features()["p3"]
    pool = module.pools["p3"]
    expected = []
    for b in range(x.shape[0]):
        tokens = [x[b, :, i, j] for i in range(4) for j in range(4)]
        logits = torch.stack([(pool.key(t) * pool.query).sum() / 2.0 for t in tokens])  # sqrt(4)
        weights = logits.softmax(dim=0)
        expected.append(sum(w * t for w, t in zip(weights, tokens)))
    g = F.normalize(module.proj(torch.stack(expected)), dim=-1)
    torch.testing.assert_close(module.embed({"p3": x}), g, atol=1e-6, rtol=1e-5)


def test_gradients_reach_student_and_parameters_not_text():
    torch.manual_seed(0)
    module = HierKDGlobalDistillation({"p3": 4, "p4": 4}, 6, learnable_temperature=True)
    feats = {k: v.requires_grad_(True) for k, v in features().items()}
    text = torch.randn(3, 6, requires_grad=True)
    module(feats, text)["loss_hierkd_global"].backward()
    assert text.grad is None
    assert feats["p3"].grad.abs().sum() > 0
    assert module.log_scale.grad is not None
    assert module.pools["p4"].query.grad is not None


@pytest.mark.parametrize("batch", [0, 1])
def test_degenerate_batches_give_connected_zero(batch):
    module = HierKDGlobalDistillation({"p3": 4, "p4": 4}, 6)
    feats = {k: v.requires_grad_(True) for k, v in features(batch=batch).items()}
    out = module(feats, torch.randn(batch, 6))["loss_hierkd_global"]
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert feats["p3"].grad is not None


def test_valid_mask_drops_images_without_captions():
    torch.manual_seed(0)
    module = HierKDGlobalDistillation(4, 6, pooling="mean")
    feats = features(batch=3)
    text = F.normalize(torch.randn(3, 6), dim=-1)
    valid = torch.tensor([True, False, True])
    sub = {k: v[valid] for k, v in feats.items()}
    torch.testing.assert_close(
        module(feats, text, valid)["loss_hierkd_global"],
        module(sub, text[valid])["loss_hierkd_global"],
    )


def test_errors_name_the_problem():
    module = HierKDGlobalDistillation({"p3": 4, "p4": 4}, 6)
    with pytest.raises(KeyError, match="p4"):
        module.embed({"p3": torch.randn(2, 4, 2, 2)})
    with pytest.raises(ValueError, match="one caption per image"):
        module(features(batch=2), torch.randn(3, 6))
    with pytest.raises(ValueError, match="pooling"):
        HierKDGlobalDistillation(4, 6, pooling="max")
