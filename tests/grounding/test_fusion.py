"""BiAttentionLayer / FeatureTextFusion against a hand computation; padding; gradients."""

from __future__ import annotations

import pytest
import torch

from ovdet.methods.grounding import BiAttentionLayer, FeatureTextFusion


def _layer(heads: int = 1, scale: float = 1.0, ffn: int = 0) -> BiAttentionLayer:
    torch.manual_seed(0)
    return BiAttentionLayer(
        6, 5, embed_dim=4, num_heads=heads, layer_scale=scale, ffn_dim=ffn
    ).double()


def _ln(x: torch.Tensor) -> torch.Tensor:  # LayerNorm at init: weight 1, bias 0
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5)


def test_one_head_matches_the_formula_by_hand():
    layer = _layer(heads=1, scale=0.5)
    g = torch.Generator().manual_seed(1)
    image = torch.randn(1, 3, 6, generator=g, dtype=torch.float64)
    text = torch.randn(1, 2, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    new_image, new_text = layer(image, text, mask)

    def lin(m, x):
        return x @ m.weight.T + m.bias

    o, p = _ln(image[0]), _ln(text[0])
    a = lin(layer.query_image, o) @ lin(layer.key_text, p).T / 2.0  # sqrt(d_head = 4)
    # image side: each position over the 2 tokens; text side: each token over the 3 positions
    w_i = torch.exp(a) / torch.exp(a).sum(1, keepdim=True)
    w_t = torch.exp(a.T) / torch.exp(a.T).sum(1, keepdim=True)
    o_upd = lin(layer.out_image, w_i @ lin(layer.value_text, p))
    p_upd = lin(layer.out_text, w_t @ lin(layer.value_image, o))
    torch.testing.assert_close(new_image[0], image[0] + 0.5 * o_upd)
    torch.testing.assert_close(new_text[0], text[0] + 0.5 * p_upd)
    # one logit matrix for both directions
    torch.testing.assert_close(layer.attention_logits(image, text)[0, 0], a)


def test_padding_tokens_have_no_effect():
    layer = _layer(heads=2, ffn=8)
    g = torch.Generator().manual_seed(2)
    image = torch.randn(2, 7, 6, generator=g, dtype=torch.float64)
    text = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    padded = torch.cat([text, 1e3 * torch.randn(2, 4, 5, generator=g, dtype=torch.float64)], 1)
    mask = torch.tensor([[True] * 3 + [False] * 4] * 2)
    img_a, txt_a = layer(image, text, torch.ones(2, 3, dtype=torch.bool))
    img_b, txt_b = layer(image, padded, mask)
    torch.testing.assert_close(img_a, img_b)
    torch.testing.assert_close(txt_a, txt_b[:, :3])


def test_gradient_reaches_image_and_text():
    layer = _layer(heads=2, scale=1e-4, ffn=8)
    image = torch.randn(1, 4, 6, dtype=torch.float64, requires_grad=True)
    text = torch.randn(1, 3, 5, dtype=torch.float64, requires_grad=True)
    new_image, new_text = layer(image, text, torch.ones(1, 3, dtype=torch.bool))
    # through the cross terms only: the identity paths are subtracted
    ((new_image - image) ** 2).sum().backward(retain_graph=True)
    assert text.grad.abs().sum() > 0  # the image update reads the tokens
    image.grad = None
    ((new_text - text) ** 2).sum().backward()
    assert image.grad.abs().sum() > 0  # the text update reads the image
    for name in ("query_image", "key_text", "value_text", "value_image"):
        assert getattr(layer, name).weight.grad.abs().sum() > 0, name


def test_logits_are_clamped():
    layer = _layer()
    with torch.no_grad():
        layer.query_image.weight.mul_(1e6)
        layer.key_text.weight.mul_(1e6)
    logits = layer.attention_logits(torch.randn(1, 3, 6).double(), torch.randn(1, 2, 5).double())
    assert logits.abs().max() <= 50000.0


def test_fusion_over_levels_keeps_shapes_and_k0_is_identity():
    g = torch.Generator().manual_seed(3)
    feats = {
        "p2": torch.randn(2, 8, 4, 6, generator=g),
        "p3": torch.randn(2, 8, 2, 3, generator=g),
        "p4": torch.randn(2, 8, 1, 2, generator=g),
    }
    text = torch.randn(1, 5, 12, generator=g)
    mask = torch.ones(1, 5, dtype=torch.bool)
    fusion = FeatureTextFusion(
        in_features=["p2", "p3"], image_dim=8, text_dim=12, num_layers=2, layer_scale=1.0
    )
    out, tokens = fusion(feats, text, mask)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in feats.items()}
    assert tokens.shape == (2, 5, 12)
    assert out["p4"] is feats["p4"]  # not fused
    assert not torch.allclose(out["p2"], feats["p2"])
    # one softmax over all levels: fusing p2 and p3 together differs from fusing p2 alone
    alone = FeatureTextFusion(
        in_features=["p2"], image_dim=8, text_dim=12, num_layers=2, layer_scale=1.0
    )
    alone.load_state_dict(fusion.state_dict())
    assert not torch.allclose(alone(feats, text, mask)[1], tokens)
    none = FeatureTextFusion(in_features=["p2"], image_dim=8, text_dim=12, num_layers=0)
    out0, tokens0 = none(feats, text, mask)
    assert out0 is feats and torch.equal(tokens0[1], text[0])
    with pytest.raises(ValueError, match="divisible"):
        BiAttentionLayer(8, 12, embed_dim=10, num_heads=4)


@pytest.mark.parametrize("padded", [False, True])
def test_fused_attention_equals_the_explicit_logit_matrix(padded, monkeypatch):
    """The fused kernels (GPU default) give the explicit path's numbers, padding included,
    and train the same way (gradients of both sides and of every projection)."""
    explicit = _layer(heads=2, scale=0.5, ffn=8)
    fused = _layer(heads=2, scale=0.5, ffn=8)
    fused.attention = "fused"
    explicit.attention = "explicit"
    g = torch.Generator().manual_seed(4)
    image = torch.randn(3, 9, 6, generator=g, dtype=torch.float64)
    text = torch.randn(3, 5, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 5, dtype=torch.bool)
    if padded:
        mask[0, 3:] = False
        mask[2, 1:] = False
        text[~mask] = 1e3  # padding values must not leak into the real rows
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(kwargs.get("attn_mask") is not None)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    outs, grads = [], []
    for layer in (explicit, fused):
        img, txt = image.clone().requires_grad_(), text.clone().requires_grad_()
        new_image, new_text = layer(img, txt, mask)
        (new_image.square().sum() + new_text[mask].square().sum()).backward()
        outs.append((new_image.detach(), new_text.detach()[mask]))
        grads.append(
            [img.grad, txt.grad[mask]] + [p.grad for p in layer.parameters() if p.grad is not None]
        )
        layer.zero_grad()
    # the explicit layer never calls the kernel; the fused one once per direction, the padding
    # mask on the image side only
    assert calls == [padded, False]
    torch.testing.assert_close(outs[1], outs[0])
    assert len(grads[0]) == len(grads[1]) > 2
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(b, a)


def test_attention_mode_default_and_refusal():
    assert BiAttentionLayer(6, 5, embed_dim=4, num_heads=2).attention == "fused"
    fusion = FeatureTextFusion(
        in_features=["p2"], image_dim=6, text_dim=5, num_layers=2, attention="explicit"
    )
    assert all(layer.attention == "explicit" for layer in fusion.layers)
    with pytest.raises(ValueError, match="attention must be one of"):
        BiAttentionLayer(6, 5, embed_dim=4, num_heads=2, attention="flash")
