"""ViLD-image distillation objective (docs/methods.md#vild-image-and-vild)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ViLDImageDistillation"]

from ovdet.modeling.distill.functional import normalised_pair, zero_loss


class ViLDImageDistillation(nn.Module):
    """ViLD-image: L1 between region embeddings and CLIP embeddings of the same regions.

    ``loss_vild_image = weight * (1/M) * sum_r ||e_r - v_r||_1`` with ``e_r`` and ``v_r`` L2-
    normalised here; the L1 norm is summed over the D dimensions and averaged over the M
    regions. The teacher embeddings are detached. With M = 0 the loss is a zero
    connected to the student's graph.

    Args:
        weight: loss weight ``w`` (ViLD uses 0.5).
    """

    def __init__(self, weight: float = 0.5) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(
        self, student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            student_embeddings: (M, D) detector region embeddings of the M distilled proposals.
            teacher_embeddings: (M, D) CLIP embeddings of the same proposals (row-aligned).

        Returns:
            ``{"loss_vild_image": scalar}``.
        """
        student, teacher = normalised_pair(
            student_embeddings, teacher_embeddings, "ViLDImageDistillation"
        )
        if student.shape[0] == 0:
            return {"loss_vild_image": zero_loss(student_embeddings)}
        loss = (student - teacher).abs().sum(dim=1).mean()
        return {"loss_vild_image": self.weight * loss}

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
