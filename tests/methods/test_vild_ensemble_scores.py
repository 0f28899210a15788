"""ViLD-ensemble's image head and score combination on hand numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ovdet.methods.vild_ensemble import ViLDEnsembleHead, vild_ensemble_scores


def test_ensemble_formula_on_hand_numbers():
    text = torch.tensor([[0.8, 0.1], [0.25, 0.5]])
    image = torch.tensor([[0.2, 0.9], [0.25, 0.125]])
    is_base = torch.tensor([True, False])
    lam = 2 / 3
    out = vild_ensemble_scores(text, image, is_base, lam)
    expected = torch.tensor(
        [
            [0.8 ** (2 / 3) * 0.2 ** (1 / 3), 0.1 ** (1 / 3) * 0.9 ** (2 / 3)],
            [0.25 ** (2 / 3) * 0.25 ** (1 / 3), 0.5 ** (1 / 3) * 0.125 ** (2 / 3)],
        ]
    )
    torch.testing.assert_close(out, expected)
    assert out[1, 0].item() == pytest.approx(0.25)
    assert out[1, 1].item() == pytest.approx(0.5 ** (1 / 3) * 0.25)


def test_lambda_extremes_pick_one_head():
    text, image = torch.rand(3, 4), torch.rand(3, 4)
    is_base = torch.tensor([True, True, False, False])
    out = vild_ensemble_scores(text, image, is_base, lam=1.0)
    torch.testing.assert_close(out[:, :2], text[:, :2])
    torch.testing.assert_close(out[:, 2:], image[:, 2:])


def test_ensemble_head_logits_and_combination():
    torch.manual_seed(0)
    head = ViLDEnsembleHead(16, 8, temperature=0.1, lam=0.75)
    feats = torch.randn(5, 16)
    classes = torch.randn(3, 8)
    logits = head.logits(feats, classes)
    expected = head.embed(feats) @ F.normalize(classes, dim=1).T / 0.1
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(head.embed(feats).norm(dim=1), torch.ones(5))
    text_probs = torch.rand(5, 3)
    is_base = torch.tensor([True, False, True])
    torch.testing.assert_close(
        head.combine(text_probs, logits, is_base),
        vild_ensemble_scores(text_probs, logits.softmax(dim=1), is_base, 0.75),
    )
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            ViLDEnsembleHead(4, 2, temperature=bad)
    with pytest.raises(ValueError, match="lam must be in"):
        ViLDEnsembleHead(4, 2, lam=1.5)


def test_shape_errors():
    with pytest.raises(ValueError, match="is_base"):
        vild_ensemble_scores(torch.rand(2, 3), torch.rand(2, 3), torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"\(R, C\)"):
        vild_ensemble_scores(torch.rand(2, 3), torch.rand(2, 4), torch.ones(3, dtype=torch.bool))
