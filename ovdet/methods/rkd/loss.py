"""RKD's region distillation objective: L1 + inter-embedding relationship matching
(docs/methods.md#rkd)."""

from __future__ import annotations

import torch
from torch import nn

from ovdet.modeling.distill.functional import normalised_pair, zero_loss

__all__ = ["RKDDistillation"]


class RKDDistillation(nn.Module):
    """RKD: region-wise L1 plus inter-embedding relationship matching (IRM).

    With E (student) and V (teacher) the (N, D) L2-normalised embeddings of the N regions of the
    batch (all images concatenated)::

        loss_rkd_l1  = l1_weight  * (1/N) * sum_r ||e_r - v_r||_1
        loss_rkd_irm = irm_weight * ||E E^T - V V^T||_F^2 / N^2      (irm_norm="fro")
                     = irm_weight * sum_ij |(E E^T - V V^T)_ij| / N^2 (irm_norm="l1")

    The teacher embeddings are detached. With N = 0 both terms are zeros connected to the
    student's graph (N = 1 gives IRM = 0 since both similarity matrices are [[1]]).

    Args:
        l1_weight: weight of the L1 term.
        irm_weight: weight of the relationship term.
        irm_norm: "fro" (squared Frobenius) or "l1".
    """

    def __init__(
        self, l1_weight: float = 1.0, irm_weight: float = 1.0, irm_norm: str = "fro"
    ) -> None:
        super().__init__()
        if irm_norm not in ("fro", "l1"):
            raise ValueError(f"RKDDistillation: irm_norm must be 'fro' or 'l1', got {irm_norm!r}.")
        self.l1_weight = float(l1_weight)
        self.irm_weight = float(irm_weight)
        self.irm_norm = irm_norm

    def forward(
        self, student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Compute the losses.

        Args:
            student_embeddings: (N, D) detector region embeddings of the batch's distilled regions.
            teacher_embeddings: (N, D) teacher embeddings of the same regions (row-aligned).

        Returns:
            ``{"loss_rkd_l1": scalar, "loss_rkd_irm": scalar}``.
        """
        student, teacher = normalised_pair(
            student_embeddings, teacher_embeddings, "RKDDistillation"
        )
        num = student.shape[0]
        if num == 0:
            zero = zero_loss(student_embeddings)
            return {"loss_rkd_l1": zero, "loss_rkd_irm": zero.clone()}
        l1 = (student - teacher).abs().sum(dim=1).mean()
        diff = student @ student.T - teacher @ teacher.T
        irm = diff.pow(2).sum() if self.irm_norm == "fro" else diff.abs().sum()
        return {
            "loss_rkd_l1": self.l1_weight * l1,
            "loss_rkd_irm": self.irm_weight * irm / (num * num),
        }

    def extra_repr(self) -> str:
        return (
            f"l1_weight={self.l1_weight}, irm_weight={self.irm_weight}, irm_norm={self.irm_norm!r}"
        )
