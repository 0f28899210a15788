"""Deformable convolution for a detectron2 without compiled ops, on torchvision.

Two layers of API:

* the five ``detectron2._C`` entry points with the compiled extension's exact signatures
  (``deform_conv_forward``, ``deform_conv_backward_input``, ``deform_conv_backward_filter``,
  ``modulated_deform_conv_forward``, ``modulated_deform_conv_backward``), computed with
  :func:`torchvision.ops.deform_conv2d`. Forward ops write into the ``output`` tensor they are
  given; backward ops recompute the forward with autograd enabled and write the gradients
  into the tensors they are given (accumulating where the compiled kernels accumulate:
  input, weight and bias gradients; offset and mask gradients are assigned). The
  ``columns``/``ones`` scratch buffers and ``im2col_step`` are accepted and unused.
* :func:`deform_conv` and :func:`modulated_deform_conv`, autograd functions with the
  signatures of ``detectron2.layers.deform_conv.{deform_conv, modulated_deform_conv}``. Those
  in detectron2 v0.6 only run on CUDA (their CPU backward raises ``NotImplementedError``);
  these call the ops above on any device, so :func:`ovdet.compat.apply` installs them in
  place of detectron2's on the Python-only install and ``DeformConv`` /
  ``ModulatedDeformConv`` train on CPU too.

The offset layout is the one detectron2 and torchvision share: ``offset`` is
``(N, 2 * deformable_groups * kh * kw, H_out, W_out)`` holding ``(dy, dx)`` pairs per kernel
tap, ``mask`` is ``(N, deformable_groups * kh * kw, H_out, W_out)``.
"""

from __future__ import annotations

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

__all__ = [
    "deform_conv_forward",
    "deform_conv_backward_input",
    "deform_conv_backward_filter",
    "modulated_deform_conv_forward",
    "modulated_deform_conv_backward",
    "deform_conv",
    "modulated_deform_conv",
]


def _check_groups(
    op: str,
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    group: int,
    deformable_group: int,
) -> None:
    """torchvision infers both group counts from the shapes; make them agree with the args."""
    if input.dim() != 4:
        raise ValueError(f"{op}: expected a 4D input (N, C, H, W), got {input.dim()}D")
    kh, kw = weight.shape[2], weight.shape[3]
    if input.shape[1] != weight.shape[1] * group:
        raise ValueError(
            f"{op}: input has {input.shape[1]} channels but weight {tuple(weight.shape)} "
            f"with group={group} expects {weight.shape[1] * group}"
        )
    if offset.shape[1] != 2 * deformable_group * kh * kw:
        raise ValueError(
            f"{op}: offset has {offset.shape[1]} channels, expected "
            f"2 * deformable_group ({deformable_group}) * {kh} * {kw} = "
            f"{2 * deformable_group * kh * kw}"
        )


def _write(dst: torch.Tensor, src: torch.Tensor, accumulate: bool) -> None:
    if accumulate and dst.shape == src.shape:
        dst.add_(src)
    else:
        if dst.shape != src.shape:
            dst.resize_(src.shape)
        dst.copy_(src)


def _deform_grads(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    grad_output: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    wanted: tuple[bool, bool, bool, bool, bool],
) -> list[torch.Tensor | None]:
    """Gradients of torchvision's deform_conv2d w.r.t. (input, offset, weight, bias, mask)."""
    leaves = [input, offset, weight, bias, mask]
    with torch.enable_grad():
        leaves = [
            None if t is None else t.detach().requires_grad_(w) for t, w in zip(leaves, wanted)
        ]
        x, off, w, b, m = leaves
        out = deform_conv2d(x, off, w, b, stride=stride, padding=padding, dilation=dilation, mask=m)
        inputs = [t for t, need in zip(leaves, wanted) if need and t is not None]
        grads = iter(torch.autograd.grad(out, inputs, grad_output, allow_unused=True))
    return [next(grads) if need and t is not None else None for t, need in zip(leaves, wanted)]


def deform_conv_forward(
    input: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    output: torch.Tensor,
    columns: torch.Tensor,
    ones: torch.Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> int:
    """Deformable convolution (DCNv1) forward, written into ``output``.

    Args:
        input: (N, C_in, H, W).
        weight: (C_out, C_in / group, kH, kW).
        offset: (N, 2 * deformable_group * kH * kW, H_out, W_out).
        output: (N, C_out, H_out, W_out), overwritten (resized if its shape differs).
        columns, ones, im2col_step: scratch buffers/batching of the compiled kernel; unused.
        kW, kH, dW, dH, padW, padH, dilationW, dilationH: kernel size, stride, padding and
            dilation, width first as in the compiled op.
        group, deformable_group: convolution groups and offset groups.

    Returns:
        0, like the compiled op.
    """
    _check_groups("deform_conv_forward", input, offset, weight, group, deformable_group)
    with torch.no_grad():
        out = deform_conv2d(
            input,
            offset,
            weight,
            stride=(dH, dW),
            padding=(padH, padW),
            dilation=(dilationH, dilationW),
        )
    _write(output, out, accumulate=False)
    return 0


def deform_conv_backward_input(
    input: torch.Tensor,
    offset: torch.Tensor,
    gradOutput: torch.Tensor,
    gradInput: torch.Tensor,
    gradOffset: torch.Tensor,
    weight: torch.Tensor,
    columns: torch.Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> int:
    """Gradients of :func:`deform_conv_forward` w.r.t. input and offset.

    ``gradInput`` (shape of ``input``) is accumulated into and ``gradOffset`` (shape of
    ``offset``) is overwritten, as by the compiled kernels; detectron2 passes zeros for both.
    """
    _check_groups("deform_conv_backward_input", input, offset, weight, group, deformable_group)
    g_in, g_off, *_ = _deform_grads(
        input,
        offset,
        weight,
        None,
        None,
        gradOutput,
        (dH, dW),
        (padH, padW),
        (dilationH, dilationW),
        (True, True, False, False, False),
    )
    _write(gradInput, g_in, accumulate=True)
    _write(gradOffset, g_off, accumulate=False)
    return 0


def deform_conv_backward_filter(
    input: torch.Tensor,
    offset: torch.Tensor,
    gradOutput: torch.Tensor,
    gradWeight: torch.Tensor,
    columns: torch.Tensor,
    ones: torch.Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    scale: float,
    im2col_step: int,
) -> int:
    """Gradient of :func:`deform_conv_forward` w.r.t. the weight.

    ``gradWeight`` (shape of the weight) receives ``+= scale * dL/dweight``, as in the
    compiled kernel.
    """
    weight = gradWeight.new_zeros(gradWeight.shape)  # values are irrelevant to dL/dweight
    _check_groups("deform_conv_backward_filter", input, offset, weight, group, deformable_group)
    _, _, g_w, _, _ = _deform_grads(
        input,
        offset,
        weight,
        None,
        None,
        gradOutput,
        (dH, dW),
        (padH, padW),
        (dilationH, dilationW),
        (False, False, True, False, False),
    )
    _write(gradWeight, g_w * scale, accumulate=True)
    return 0


def modulated_deform_conv_forward(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    ones: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    output: torch.Tensor,
    columns: torch.Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    deformable_group: int,
    with_bias: bool,
) -> None:
    """Modulated deformable convolution (DCNv2) forward, written into ``output``.

    Args:
        input: (N, C_in, H, W).
        weight: (C_out, C_in / group, kernel_h, kernel_w).
        bias: (C_out,), used only when ``with_bias`` (detectron2 passes a dummy otherwise).
        offset: (N, 2 * deformable_group * kh * kw, H_out, W_out).
        mask: (N, deformable_group * kh * kw, H_out, W_out) modulation scalars.
        output: (N, C_out, H_out, W_out), overwritten (resized if its shape differs).
        ones, columns: scratch buffers of the compiled kernel; unused.
    """
    _check_groups("modulated_deform_conv_forward", input, offset, weight, group, deformable_group)
    with torch.no_grad():
        out = deform_conv2d(
            input,
            offset,
            weight,
            bias if with_bias else None,
            stride=(stride_h, stride_w),
            padding=(pad_h, pad_w),
            dilation=(dilation_h, dilation_w),
            mask=mask,
        )
    _write(output, out, accumulate=False)


def modulated_deform_conv_backward(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    ones: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    columns: torch.Tensor,
    grad_input: torch.Tensor,
    grad_weight: torch.Tensor,
    grad_bias: torch.Tensor,
    grad_offset: torch.Tensor,
    grad_mask: torch.Tensor,
    grad_output: torch.Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    deformable_group: int,
    with_bias: bool,
) -> None:
    """All gradients of :func:`modulated_deform_conv_forward`, written into the ``grad_*``.

    ``grad_input``, ``grad_weight`` and ``grad_bias`` are accumulated into; ``grad_offset``
    and ``grad_mask`` are overwritten (the compiled kernels do the same). ``grad_bias`` is
    left untouched when ``with_bias`` is false.
    """
    _check_groups("modulated_deform_conv_backward", input, offset, weight, group, deformable_group)
    g_in, g_off, g_w, g_b, g_m = _deform_grads(
        input,
        offset,
        weight,
        bias if with_bias else None,
        mask,
        grad_output,
        (stride_h, stride_w),
        (pad_h, pad_w),
        (dilation_h, dilation_w),
        (True, True, True, with_bias, True),
    )
    _write(grad_input, g_in, accumulate=True)
    _write(grad_offset, g_off, accumulate=False)
    _write(grad_mask, g_m, accumulate=False)
    _write(grad_weight, g_w, accumulate=True)
    if with_bias:
        _write(grad_bias, g_b, accumulate=True)


def _output_shape(
    input: torch.Tensor,
    weight: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    sizes = []
    for d in range(2):
        kernel = dilation[d] * (weight.shape[2 + d] - 1) + 1
        sizes.append((input.shape[2 + d] + 2 * padding[d] - kernel) // stride[d] + 1)
    shape = (input.shape[0], weight.shape[0], *sizes)
    if min(shape) <= 0:
        raise ValueError(
            f"deformable convolution input {tuple(input.shape)} is too small for weight "
            f"{tuple(weight.shape)} (output would be {'x'.join(map(str, shape))})"
        )
    return shape


class _DeformConvFunction(Function):
    @staticmethod
    def forward(
        ctx,
        input: torch.Tensor,
        offset: torch.Tensor,
        weight: torch.Tensor,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        deformable_groups: int = 1,
        im2col_step: int = 64,
    ) -> torch.Tensor:
        if input.dim() != 4:
            raise ValueError(f"Expected 4D tensor as input, got {input.dim()}D tensor instead.")
        ctx.stride, ctx.padding, ctx.dilation = _pair(stride), _pair(padding), _pair(dilation)
        ctx.groups, ctx.deformable_groups = groups, deformable_groups
        ctx.im2col_step = im2col_step
        ctx.save_for_backward(input, offset, weight)
        output = input.new_empty(
            _output_shape(input, weight, ctx.stride, ctx.padding, ctx.dilation)
        )
        deform_conv_forward(
            input,
            weight,
            offset,
            output,
            input.new_empty(0),
            input.new_empty(0),
            weight.size(3),
            weight.size(2),
            ctx.stride[1],
            ctx.stride[0],
            ctx.padding[1],
            ctx.padding[0],
            ctx.dilation[1],
            ctx.dilation[0],
            groups,
            deformable_groups,
            im2col_step,
        )
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        input, offset, weight = ctx.saved_tensors
        grad_input = grad_offset = grad_weight = None
        geometry = (
            weight.size(3),
            weight.size(2),
            ctx.stride[1],
            ctx.stride[0],
            ctx.padding[1],
            ctx.padding[0],
            ctx.dilation[1],
            ctx.dilation[0],
            ctx.groups,
            ctx.deformable_groups,
        )
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_input = torch.zeros_like(input)
            grad_offset = torch.zeros_like(offset)
            deform_conv_backward_input(
                input,
                offset,
                grad_output,
                grad_input,
                grad_offset,
                weight,
                input.new_empty(0),
                *geometry,
                ctx.im2col_step,
            )
        if ctx.needs_input_grad[2]:
            grad_weight = torch.zeros_like(weight)
            deform_conv_backward_filter(
                input,
                offset,
                grad_output,
                grad_weight,
                input.new_empty(0),
                input.new_empty(0),
                *geometry,
                1,
                ctx.im2col_step,
            )
        return grad_input, grad_offset, grad_weight, None, None, None, None, None, None


class _ModulatedDeformConvFunction(Function):
    @staticmethod
    def forward(
        ctx,
        input: torch.Tensor,
        offset: torch.Tensor,
        mask: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        deformable_groups: int = 1,
    ) -> torch.Tensor:
        ctx.stride, ctx.padding, ctx.dilation = _pair(stride), _pair(padding), _pair(dilation)
        ctx.groups, ctx.deformable_groups = groups, deformable_groups
        ctx.with_bias = bias is not None
        if bias is None:
            bias = input.new_empty(1)  # placeholder, as detectron2 passes to the compiled op
        ctx.save_for_backward(input, offset, mask, weight, bias)
        output = input.new_empty(
            _output_shape(input, weight, ctx.stride, ctx.padding, ctx.dilation)
        )
        modulated_deform_conv_forward(
            input,
            weight,
            bias,
            input.new_empty(0),
            offset,
            mask,
            output,
            input.new_empty(0),
            weight.shape[2],
            weight.shape[3],
            *ctx.stride,
            *ctx.padding,
            *ctx.dilation,
            groups,
            deformable_groups,
            ctx.with_bias,
        )
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        input, offset, mask, weight, bias = ctx.saved_tensors
        grads = [torch.zeros_like(t) for t in (input, weight, bias, offset, mask)]
        modulated_deform_conv_backward(
            input,
            weight,
            bias,
            input.new_empty(0),
            offset,
            mask,
            input.new_empty(0),
            *grads,
            grad_output,
            weight.shape[2],
            weight.shape[3],
            *ctx.stride,
            *ctx.padding,
            *ctx.dilation,
            ctx.groups,
            ctx.deformable_groups,
            ctx.with_bias,
        )
        grad_input, grad_weight, grad_bias, grad_offset, grad_mask = grads
        if not ctx.with_bias:
            grad_bias = None
        return (
            grad_input,
            grad_offset,
            grad_mask,
            grad_weight,
            grad_bias,
            None,
            None,
            None,
            None,
            None,
        )


def deform_conv(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    deformable_groups: int = 1,
    im2col_step: int = 64,
) -> torch.Tensor:
    """Differentiable DCNv1 on any device; signature of detectron2's ``deform_conv``.

    Args:
        input: (N, C_in, H, W).
        offset: (N, 2 * deformable_groups * kh * kw, H_out, W_out).
        weight: (C_out, C_in / groups, kh, kw).

    Returns:
        (N, C_out, H_out, W_out).
    """
    return _DeformConvFunction.apply(
        input, offset, weight, stride, padding, dilation, groups, deformable_groups, im2col_step
    )


def modulated_deform_conv(
    input: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    deformable_groups: int = 1,
) -> torch.Tensor:
    """Differentiable DCNv2 on any device; signature of detectron2's ``modulated_deform_conv``.

    Args:
        input: (N, C_in, H, W).
        offset: (N, 2 * deformable_groups * kh * kw, H_out, W_out).
        mask: (N, deformable_groups * kh * kw, H_out, W_out).
        weight: (C_out, C_in / groups, kh, kw).
        bias: (C_out,) or None.

    Returns:
        (N, C_out, H_out, W_out).
    """
    return _ModulatedDeformConvFunction.apply(
        input, offset, mask, weight, bias, stride, padding, dilation, groups, deformable_groups
    )
