"""Rows of a tensor from every process (a global batch for contrastive losses)."""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["gather_rows", "world_size"]


def world_size() -> int:
    """Number of processes of the default group (1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class _GatherRows(torch.autograd.Function):
    """all_gather along dim 0 (rows per process may differ); backward: the local rows only."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        count = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
        counts = [torch.zeros_like(count) for _ in range(world)]
        dist.all_gather(counts, count)
        sizes = [int(c.item()) for c in counts]
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.start, ctx.rows, ctx.world = sum(sizes[:rank]), tensor.shape[0], world
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every process computes the same loss of the gathered rows, so the gradient of the
        # processes' average (what DistributedDataParallel averages) w.r.t. this process's rows
        # is world x the local gradient; the rows of other processes are constants here (their
        # own process differentiates them). This equals torch.distributed.nn.all_gather's
        # backward (a sum over processes) without communicating in the backward pass.
        return grad[ctx.start : ctx.start + ctx.rows] * ctx.world


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor``'s rows from every process, in rank order.

    Without torch.distributed, or with one process, ``tensor`` itself is returned. Otherwise
    every process must call it (with the same trailing shape and dtype; the number of rows may
    differ). The result keeps autograd for this process's rows only, with their gradient
    multiplied by the world size: every process computes the same loss of the gathered rows,
    and DistributedDataParallel averages the processes' gradients, so the parameters then get
    exactly the gradient of that loss computed by one process on the whole global batch.

    Args:
        tensor: (N_local, ...) rows of this process (bool tensors are supported).

    Returns:
        (sum_p N_p, ...) rows of all processes, rank 0 first.
    """
    if world_size() == 1:
        return tensor
    if tensor.dtype == torch.bool:
        return _GatherRows.apply(tensor.to(torch.uint8)).bool()
    return _GatherRows.apply(tensor)
