"""Deformable convolution of the detectron2 stand-in, checked against torchvision and conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import DeformConv, ModulatedDeformConv
from torchvision.ops import deform_conv2d

from ovdet.compat import deform_conv, detectron2_has_compiled_ops, ops

fallback_only = pytest.mark.skipif(
    detectron2_has_compiled_ops(),
    reason="compiled detectron2: its deformable-conv layers are CUDA-only and not replaced",
)


def _double(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()


@fallback_only
def test_fallback_installs_device_agnostic_functions():
    import detectron2.layers.deform_conv as d2_deform_conv

    assert d2_deform_conv.deform_conv is deform_conv.deform_conv
    assert d2_deform_conv.modulated_deform_conv is deform_conv.modulated_deform_conv


@fallback_only
def test_deform_conv_layer_zero_offsets_equal_conv2d_forward_and_backward():
    layer = DeformConv(4, 6, kernel_size=3, stride=1, padding=1, groups=2, deformable_groups=2)
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    offset = torch.zeros(2, 2 * 2 * 9, 9, 9, requires_grad=True)
    out = layer(x, offset)
    x_ref = x.detach().clone().requires_grad_()
    weight_ref = layer.weight.detach().clone().requires_grad_()
    ref = F.conv2d(x_ref, weight_ref, padding=1, groups=2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.weight.grad, weight_ref.grad, atol=1e-4, rtol=1e-5)
    assert offset.grad is not None and offset.grad.abs().sum() > 0


@fallback_only
def test_modulated_layer_zero_offsets_unit_mask_equal_conv2d_forward_and_backward():
    layer = ModulatedDeformConv(3, 5, kernel_size=3, stride=2, padding=1, bias=True)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    offset = torch.zeros(2, 18, 4, 4, requires_grad=True)
    mask = torch.ones(2, 9, 4, 4, requires_grad=True)
    out = layer(x, offset, mask)
    x_ref, w_ref, b_ref = (
        t.detach().clone().requires_grad_() for t in (x, layer.weight, layer.bias)
    )
    ref = F.conv2d(x_ref, w_ref, b_ref, stride=2, padding=1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    out.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.weight.grad, w_ref.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(layer.bias.grad, b_ref.grad)
    assert mask.grad.shape == mask.shape and offset.grad.shape == offset.shape


@fallback_only
def test_layers_train_with_random_offsets_on_cpu():
    layer = ModulatedDeformConv(4, 4, kernel_size=3, padding=1, deformable_groups=2)
    x = torch.randn(1, 4, 6, 6)
    offset = torch.randn(1, 36, 6, 6, requires_grad=True)
    mask = torch.rand(1, 18, 6, 6, requires_grad=True)
    layer(x, offset, mask).square().mean().backward()
    for t in (layer.weight.grad, layer.bias.grad, offset.grad, mask.grad):
        assert t is not None and torch.isfinite(t).all() and t.abs().sum() > 0


def test_deform_conv_grads_match_torchvision_autograd():
    x, w = _double(2, 4, 7, 7), _double(6, 2, 3, 3)
    offset = _double(2, 2 * 2 * 9, 4, 4, scale=1.5)  # 2 offset groups, stride 2 -> 4x4
    out = deform_conv.deform_conv(x, offset, w, 2, 1, 1, 2, 2)
    ref = deform_conv2d(x, offset, w, stride=2, padding=1)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, (x, offset, w), grad)
    theirs = torch.autograd.grad(ref, (x, offset, w), grad)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_modulated_deform_conv_grads_match_torchvision_autograd():
    x, w, bias = _double(1, 4, 6, 6), _double(4, 2, 3, 3), _double(4)
    offset = _double(1, 36, 6, 6, scale=1.5)
    mask = torch.rand(1, 18, 6, 6, dtype=torch.float64, requires_grad=True)
    out = deform_conv.modulated_deform_conv(x, offset, mask, w, bias, 1, 1, 1, 2, 2)
    ref = deform_conv2d(x, offset, w, bias, padding=1, mask=mask)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, (x, offset, mask, w, bias), grad)
    theirs = torch.autograd.grad(ref, (x, offset, mask, w, bias), grad)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_gradcheck_small():
    # Random offsets keep sample points off the integer grid, where bilinear weights kink.
    x, w = _double(1, 2, 4, 4), _double(2, 2, 2, 2)
    offset = torch.rand(1, 8, 3, 3, dtype=torch.float64).mul(0.8).add(0.1).requires_grad_()
    mask = torch.rand(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(deform_conv.deform_conv, (x, offset, w))
    assert torch.autograd.gradcheck(
        lambda *a: deform_conv.modulated_deform_conv(*a, None), (x, offset, mask, w)
    )


def test_compiled_signatures_write_into_given_tensors():
    """Call the stand-in the way detectron2's CUDA path calls ``_C`` (width-first args)."""
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64)  # kH=3, kW=2
    offset = torch.randn(2, 2 * 3 * 2, 3, 6, dtype=torch.float64)  # stride (2, 1), pad (1, 0)
    geometry = (2, 3, 1, 2, 0, 1, 1, 1, 1, 1)  # kW, kH, dW, dH, padW, padH, dilW, dilH, g, dg
    output = x.new_empty(2, 4, 3, 6)
    empty = x.new_empty(0)
    assert ops.deform_conv_forward(x, w, offset, output, empty, empty, *geometry, 64) == 0
    ref_x, ref_off, ref_w = (t.clone().requires_grad_() for t in (x, offset, w))
    ref = deform_conv2d(ref_x, ref_off, ref_w, stride=(2, 1), padding=(1, 0))
    torch.testing.assert_close(output, ref.detach())

    grad_out = torch.randn_like(output)
    want = torch.autograd.grad(ref, (ref_x, ref_off, ref_w), grad_out)
    grad_x, grad_off = torch.zeros_like(x), torch.zeros_like(offset)
    ops.deform_conv_backward_input(x, offset, grad_out, grad_x, grad_off, w, empty, *geometry, 64)
    grad_w = torch.ones_like(w)  # the filter gradient accumulates scale * dL/dw
    ops.deform_conv_backward_filter(x, offset, grad_out, grad_w, empty, empty, *geometry, 0.5, 64)
    torch.testing.assert_close(grad_x, want[0])
    torch.testing.assert_close(grad_off, want[1])
    torch.testing.assert_close(grad_w, 1 + 0.5 * want[2])


def test_modulated_compiled_signature_without_bias():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    offset, mask = torch.randn(1, 18, 5, 5), torch.rand(1, 9, 5, 5)
    bias = x.new_empty(1)  # detectron2's placeholder when there is no bias
    output, empty = x.new_empty(1, 3, 5, 5), x.new_empty(0)
    geometry = (3, 3, 1, 1, 1, 1, 1, 1, 1, 1)
    ops.modulated_deform_conv_forward(
        x, w, bias, empty, offset, mask, output, empty, *geometry, False
    )
    torch.testing.assert_close(output, deform_conv2d(x, offset, w, padding=1, mask=mask))
    grads = [torch.zeros_like(t) for t in (x, w, bias, offset, mask)]
    bias_before = grads[2].clone()
    ops.modulated_deform_conv_backward(
        x, w, bias, empty, offset, mask, empty, *grads, torch.ones_like(output), *geometry, False
    )
    torch.testing.assert_close(grads[2], bias_before)  # untouched without bias
    assert all(g.abs().sum() > 0 for i, g in enumerate(grads) if i != 2)


def test_group_mismatch_is_a_clear_error():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="offset has 9 channels"):
        deform_conv.deform_conv(x, torch.zeros(1, 9, 3, 3), w)
    with pytest.raises(ValueError, match="too small"):
        deform_conv.deform_conv(torch.randn(1, 4, 2, 2), torch.zeros(1, 18, 1, 1), w)


@fallback_only
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_detectron2_cuda_functions_call_the_stand_in():
    """detectron2's own CUDA-only autograd functions, which call ``_C`` directly."""
    import detectron2.layers.deform_conv as d2_deform_conv

    cuda = torch.device("cuda")
    x = torch.randn(2, 4, 6, 6, device=cuda, requires_grad=True)
    w = torch.randn(4, 4, 3, 3, device=cuda, requires_grad=True)
    offset = torch.randn(2, 18, 6, 6, device=cuda, requires_grad=True)
    mask = torch.rand(2, 9, 6, 6, device=cuda, requires_grad=True)
    out = d2_deform_conv._DeformConv.apply(x, offset, w, 1, 1)
    out_mod = d2_deform_conv._ModulatedDeformConv.apply(x, offset, mask, w, None, 1, 1)
    ours = torch.autograd.grad((out + out_mod).sum(), (x, offset, w, mask))
    ref = deform_conv2d(x, offset, w, padding=1) + deform_conv2d(x, offset, w, padding=1, mask=mask)
    theirs = torch.autograd.grad(ref.sum(), (x, offset, w, mask))
    torch.testing.assert_close(out + out_mod, ref)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
