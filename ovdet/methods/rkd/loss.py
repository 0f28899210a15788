"""RKD's region distillation objectives: L1 + inter-embedding relationship matching (IRM)
(docs/methods.md#rkd).

- :class:`RKDDistillation`: the official objective, term for term as the official code
  computes it (hanoonaR/object-centric-ovd, ``ovd/modeling/roi_heads/custom_fast_rcnn.py``,
  ``CustomFastRCNNOutputLayers.distil_l1_loss`` and ``irm_loss``).
- :class:`RKDNormalisedDistillation`: ovdet's earlier variant (L1 summed over D, IRM on the raw
  similarity matrices divided by N^2), kept so the OV-Shapes RKD configs train exactly as
  their published results did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ovdet.modeling.distill.functional import normalised_pair, zero_loss

__all__ = ["RKDDistillation", "RKDNormalisedDistillation"]


class RKDDistillation(nn.Module):
    """RKD as in the official code: region L1 + IRM on row-normalised similarity matrices.

    With E (student) and V (teacher) the (N, D) L2-normalised embeddings of the N distilled
    regions of the batch (all images of the process concatenated, as the official
    ``CustomRCNN.get_clip_image_features`` does)::

        loss_rkd_l1  = l1_weight  * mean_{r, d} |E - V|_{rd}          (mean over all N x D)
        loss_rkd_irm = irm_weight * || rownorm(E E^T) - rownorm(V V^T) ||_F^2

    where ``rownorm`` divides each row by its **L1** norm (the sum of its absolute values). The
    official code writes ``F.l1_loss(image_features, clip_features, reduction="mean") *
    DISTIL_L1_LOSS_WEIGHT * rkd_temperature`` and, with ``g_img = normalize(torch.matmul(
    image_features, torch.t(image_features)), 1)`` (the positional ``1`` of
    ``torch.nn.functional.normalize`` is ``p``: an L1 normalisation along the default
    ``dim=1``), ``torch.norm(g_img - g_clip) ** 2 * IRM_LOSS_WEIGHT * rkd_temperature`` with
    ``rkd_temperature = 100``. ``l1_weight`` and ``irm_weight`` here are those products
    (official COCO config: 0.15 x 100 = 15 each; LVIS: 0.25 x 100 and 0.13 x 100). The IRM is
    not divided by N^2; each row of a normalised matrix sums (in absolute value) to 1, so the
    IRM is at most 4N.

    The teacher embeddings are detached (the official ones are constants read from disk).
    With N = 0 both terms are zeros connected to the student's graph (the official L1 would be
    NaN); N = 1 gives IRM = 0 (both matrices are [[1]]).

    Args:
        l1_weight: weight of the L1 term (official weight x 100).
        irm_weight: weight of the IRM term (official weight x 100).
    """

    def __init__(self, l1_weight: float = 15.0, irm_weight: float = 15.0) -> None:
        super().__init__()
        self.l1_weight = float(l1_weight)
        self.irm_weight = float(irm_weight)

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
        if student.shape[0] == 0:
            zero = zero_loss(student_embeddings)
            return {"loss_rkd_l1": zero, "loss_rkd_irm": zero.clone()}
        l1 = F.l1_loss(student, teacher, reduction="mean")
        # p=1: the official normalize(..., 1) passes 1 as p (see the class docstring)
        g_student = F.normalize(student @ student.T, p=1.0, dim=1)
        g_teacher = F.normalize(teacher @ teacher.T, p=1.0, dim=1)
        irm = torch.linalg.matrix_norm(g_student - g_teacher) ** 2
        return {"loss_rkd_l1": self.l1_weight * l1, "loss_rkd_irm": self.irm_weight * irm}

    def extra_repr(self) -> str:
        return f"l1_weight={self.l1_weight}, irm_weight={self.irm_weight}"


class RKDNormalisedDistillation(nn.Module):
    """ovdet's RKD variant: L1 summed over D, IRM on raw similarities divided by N^2.

    With E (student) and V (teacher) the (N, D) L2-normalised embeddings of the N regions of the
    batch (all images concatenated)::

        loss_rkd_l1  = l1_weight  * (1/N) * sum_r ||e_r - v_r||_1
        loss_rkd_irm = irm_weight * ||E E^T - V V^T||_F^2 / N^2      (irm_norm="fro")
                     = irm_weight * sum_ij |(E E^T - V V^T)_ij| / N^2 (irm_norm="l1")

    Why it exists: it is the form ovdet implemented first, and the OV-Shapes RKD configs
    (``configs/ov_shapes/rkd_small.py``, ``rkd_ensemble_small.py``, ``rkd_hierkd_small.py``)
    and their results in docs/results/ov_shapes.md were trained with it; they keep it so their
    numbers do not move. Its L1 equals the official one for ``l1_weight = official x 100 / D``;
    its IRM has no exact conversion (the official one divides each row of the similarity
    matrices by its L1 norm and is not divided by N^2; on N = 10 random 512-d regions, at the
    official COCO weight it is 60 to 1000 times this one at weight 1, the more so the less
    similar the regions). For the published recipe use :class:`RKDDistillation`.

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
            raise ValueError(
                f"RKDNormalisedDistillation: irm_norm must be 'fro' or 'l1', got {irm_norm!r}."
            )
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
            student_embeddings, teacher_embeddings, "RKDNormalisedDistillation"
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
