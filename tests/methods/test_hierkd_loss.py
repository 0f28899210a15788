"""HierKD global objective: hand-computed InfoNCE, the official expression, pooling, degenerate
batches, gradients, the global batch gathered over two gloo processes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from ovdet.methods.hierkd import HierKDGlobalDistillation, hierkd_distiller


def hand_info_nce(image, text, scale, reduction="sum"):
    """Symmetric InfoNCE with explicit loops over (B, D) normalised rows."""
    b = len(image)
    logits = [
        [scale * sum(x * y for x, y in zip(image[i], text[j])) for j in range(b)] for i in range(b)
    ]
    rows = sum(math.log(sum(math.exp(v) for v in logits[i])) - logits[i][i] for i in range(b))
    cols = sum(
        math.log(sum(math.exp(logits[i][j]) for i in range(b))) - logits[j][j] for j in range(b)
    )
    total = rows / b + cols / b
    return total if reduction == "sum" else total / 2


def official_symmetric_cl(text_img_feats, text_feats, tem, loss_weight=1.0):
    """mengqiDyangge/HierKD ``mmdet/models/losses/kd_ins_loss.py::Symmetric_CLLoss.forward``
    with ``type="caption"``, as written there.

    ``text_img_feats`` (B_text, B_image, D): the image embedding pooled for each caption (the
    official pooling is text-conditioned; ovdet's is not, so every caption sees the same one).
    """
    device = text_feats.device
    ce = nn.CrossEntropyLoss()
    text_img_match = tem * torch.bmm(text_img_feats, text_feats.unsqueeze(2)).squeeze(-1)
    img_text_match = text_img_match.t()
    target = torch.LongTensor(range(len(text_img_feats))).to(device)
    return loss_weight * (ce(img_text_match, target) + ce(text_img_match, target))


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
    expected = hand_info_nce(g.tolist(), text.tolist(), 1 / 0.5)  # the directions summed
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
    expected = 2.0 * hand_info_nce(g.tolist(), text.tolist(), 1 / 0.1)
    assert module(feats, text)["loss_hierkd_global"].item() == pytest.approx(expected, rel=1e-5)


def test_official_form_matches_the_official_expression():
    torch.manual_seed(0)
    module = HierKDGlobalDistillation(4, 6, pooling="attention")  # official defaults
    assert module.reduction == "sum" and module.scale_param == "linear"
    assert isinstance(module.scale, nn.Parameter) and module.scale.item() == pytest.approx(10.0)
    feats = features(batch=4)
    text = F.normalize(torch.randn(4, 6, dtype=torch.float32), dim=-1)
    out = module(feats, text)["loss_hierkd_global"]
    g = module.embed(feats)
    expected = official_symmetric_cl(g.unsqueeze(0).expand(4, 4, 6), text, module.scale)
    assert out.item() == pytest.approx(expected.item(), rel=1e-6)
    # the scale is learned as is (dist_featuremap_tem = nn.Parameter(10.0)): same gradient
    out.backward()
    grad = module.scale.grad.clone()
    module.zero_grad()
    official_symmetric_cl(
        module.embed(feats).unsqueeze(0).expand(4, 4, 6), text, module.scale
    ).backward()
    torch.testing.assert_close(grad, module.scale.grad)


def test_ov_shapes_form_is_the_earlier_one():
    """reduction="mean", scale_param="log": half the sum, log(scale) learned, clamped."""
    torch.manual_seed(0)
    module = HierKDGlobalDistillation(4, 6, reduction="mean", scale_param="log")
    assert isinstance(module.log_scale, nn.Parameter) and not hasattr(module, "scale")
    assert module.log_scale.item() == pytest.approx(math.log(10.0))
    feats = features()
    text = F.normalize(torch.randn(3, 6), dim=-1)
    g = module.embed(feats)
    expected = hand_info_nce(g.tolist(), text.tolist(), 10.0, reduction="mean")
    assert module(feats, text)["loss_hierkd_global"].item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        module.log_scale.fill_(math.log(500.0))
    assert module.logit_scale.item() == pytest.approx(100.0)
    cfg = hierkd_distiller(None, in_channels=64, embed_dim=128, reduction="mean", scale_param="log")
    assert (cfg.objective.reduction, cfg.objective.scale_param) == ("mean", "log")
    assert cfg.objective.temperature == 0.1 and cfg.objective.weight == 1.0
    default = hierkd_distiller(None)
    assert (default.objective.reduction, default.objective.scale_param) == ("sum", "linear")
    assert default.objective.gather is True


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
    assert module.scale.grad is not None
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
    with pytest.raises(ValueError, match="reduction must be one of"):
        HierKDGlobalDistillation(4, 6, reduction="none")
    with pytest.raises(ValueError, match="scale_param must be one of"):
        HierKDGlobalDistillation(4, 6, scale_param="exp")


# ---------------------------------------------------------------- the global batch, two processes
def _rank_inputs(rank: int):
    """Process ``rank``'s batch: 3 images on rank 0, 2 on rank 1 (one without a caption)."""
    sizes, valid = [3, 2], [[True, True, True], [True, False]]
    feats = features(batch=sizes[rank], seed=10 + rank)
    g = torch.Generator().manual_seed(20 + rank)
    return feats, torch.randn(sizes[rank], 6, generator=g), torch.tensor(valid[rank])


def _gathered_step(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same weights in every process, as under DDP
        module = HierKDGlobalDistillation(4, 6, pooling="attention")
        feats, text, valid = _rank_inputs(rank)
        feats = {k: v.requires_grad_(True) for k, v in feats.items()}
        loss = module(feats, text, valid)["loss_hierkd_global"]
        loss.backward()
        result = {
            "loss": loss.detach(),
            "feature_grads": {k: v.grad for k, v in feats.items()},
            "proj_grad": module.proj.weight.grad,
            "scale_grad": module.scale.grad,
        }
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gathered_loss_is_the_single_process_loss_of_the_global_batch(tmp_path):
    world = 2
    mp.spawn(_gathered_step, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]

    # one process, the concatenated batch (the same weights)
    torch.manual_seed(0)
    module = HierKDGlobalDistillation(4, 6, pooling="attention")
    inputs = [_rank_inputs(r) for r in range(world)]
    feats = {k: torch.cat([f[k] for f, _, _ in inputs]).requires_grad_(True) for k in ("p3", "p4")}
    text = torch.cat([t for _, t, _ in inputs])
    valid = torch.cat([v for _, _, v in inputs])
    loss = module(feats, text, valid)["loss_hierkd_global"]
    loss.backward()

    rows = [0, 3, 5]
    for rank, result in enumerate(results):
        # every process computes the loss of the whole global batch
        assert result["loss"].item() == pytest.approx(loss.item(), rel=1e-6)
        # gradients reach this process's own images: world x the single-process gradient,
        # so that DistributedDataParallel's average over processes gives exactly that gradient
        for k, grad in result["feature_grads"].items():
            expected = feats[k].grad[rows[rank] : rows[rank + 1]]
            torch.testing.assert_close(grad, world * expected, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(result["scale_grad"], module.scale.grad, rtol=1e-5, atol=1e-7)
    averaged = sum(r["proj_grad"] for r in results) / world  # what DDP applies
    torch.testing.assert_close(averaged, module.proj.weight.grad, rtol=1e-5, atol=1e-7)
    # the global batch differs from each process's own: the gather is not a no-op
    torch.manual_seed(0)
    local = HierKDGlobalDistillation(4, 6, pooling="attention", gather=False)
    alone = local(*_rank_inputs(0))["loss_hierkd_global"]
    assert abs(alone.item() - loss.item()) > 1e-3


def test_gather_is_a_no_op_in_one_process():
    torch.manual_seed(0)
    gathered = HierKDGlobalDistillation(4, 6, gather=True)
    torch.manual_seed(0)
    local = HierKDGlobalDistillation(4, 6, gather=False)
    feats, text, valid = _rank_inputs(0)
    torch.testing.assert_close(
        gathered(feats, text, valid)["loss_hierkd_global"],
        local(feats, text, valid)["loss_hierkd_global"],
    )
