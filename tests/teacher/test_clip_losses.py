"""ITC and SigLIP losses against hand-computed values (docs/methods.md#clip-basics)."""

from __future__ import annotations

import math

import pytest
import torch

from ovdet.teacher.clip_losses import MAX_LOGIT_SCALE, itc_loss, positive_mask, siglip_loss

# Two pairs in 2-D: I = [[1, 0], [0, 1]], T = [[1, 0], [0.6, 0.8]], so I T^T = [[1, .6], [0, .8]].
IMG = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TXT = torch.tensor([[1.0, 0.0], [0.6, 0.8]])


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_itc_matches_hand_computed_value():
    # s = 2: L = [[2, 1.2], [0, 1.6]]; CE of a 2-way row with margin m is log(1 + e^-m).
    # rows: margins 0.8, 1.6; columns (L^T): margins 2.0, 0.4.
    expected = (_softplus(-0.8) + _softplus(-1.6) + _softplus(-2.0) + _softplus(-0.4)) / 4
    loss = itc_loss(IMG, TXT, torch.tensor(math.log(2.0)))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(0.2987361675697604, abs=1e-6)


def test_itc_clamps_logit_scale_at_log_100():
    big = torch.tensor(math.log(1000.0), requires_grad=True)
    at_max = itc_loss(IMG, TXT, torch.tensor(MAX_LOGIT_SCALE))
    clamped = itc_loss(IMG, TXT, big)
    assert clamped.item() == pytest.approx(at_max.item(), abs=1e-6)
    clamped.backward()
    assert big.grad.item() == 0.0  # no gradient while clamped
    t = torch.tensor(math.log(2.0), requires_grad=True)
    itc_loss(IMG, TXT, t).backward()
    assert t.grad.item() != 0.0  # learnable temperature below the clamp


def test_itc_multi_positive_targets():
    # Both pairs share one id: every entry is a positive, target 1/2 per row and column.
    # row i loss = logsumexp(row) - mean(row).
    def lse(a: float, b: float) -> float:
        return math.log(math.exp(a) + math.exp(b))

    expected = (
        (lse(2.0, 1.2) - 1.6)
        + (lse(0.0, 1.6) - 0.8)
        + (lse(2.0, 0.0) - 1.0)
        + (lse(1.2, 1.6) - 1.4)
    ) / 4
    loss = itc_loss(IMG, TXT, torch.tensor(math.log(2.0)), positive_ids=torch.tensor([7, 7]))
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_itc_distinct_ids_equal_plain_infonce():
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    scale = torch.tensor(math.log(1 / 0.07))
    plain = itc_loss(img, txt, scale)
    ids = itc_loss(img, txt, scale, positive_ids=torch.arange(6) * 3)
    assert ids.item() == pytest.approx(plain.item(), abs=1e-6)


def test_siglip_matches_hand_computed_value():
    # s = 2, b = -1: L = [[1, 0.2], [-1, 0.6]]; z = [[1, -1], [-1, 1]];
    # loss = -(logsig(1) + logsig(-0.2) + logsig(1) + logsig(0.6)) / 2.
    expected = (_softplus(-1.0) + _softplus(0.2) + _softplus(-1.0) + _softplus(-0.6)) / 2
    loss = siglip_loss(IMG, TXT, torch.tensor(math.log(2.0)), torch.tensor(-1.0))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(0.9310750812292099, abs=1e-6)


def test_siglip_duplicate_ids_are_positive():
    # All positive: loss = -(logsig(1) + logsig(0.2) + logsig(-1) + logsig(0.6)) / 2.
    expected = (_softplus(-1.0) + _softplus(-0.2) + _softplus(1.0) + _softplus(-0.6)) / 2
    loss = siglip_loss(
        IMG, TXT, torch.tensor(math.log(2.0)), torch.tensor(-1.0), positive_ids=torch.tensor([3, 3])
    )
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_positive_mask_and_shape_errors():
    mask = positive_mask(torch.tensor([0, 1, 0]), 3, "cpu")
    assert mask.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    assert positive_mask(None, 2, "cpu").tolist() == [[True, False], [False, True]]
    with pytest.raises(ValueError, match="positive_ids"):
        itc_loss(IMG, TXT, torch.tensor(0.0), positive_ids=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="same shape"):
        siglip_loss(IMG, TXT[:1], torch.tensor(0.0), torch.tensor(0.0))
