"""Input checks and helpers shared by the distillation objectives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["normalised_pair", "zero_loss"]


def normalised_pair(
    student: torch.Tensor, teacher: torch.Tensor, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check (M, D) student/teacher embeddings and L2-normalise rows; the teacher is detached.

    Args:
        student: (M, D) student region embeddings (gradients flow).
        teacher: (M, D) teacher embeddings (detached here).
        where: name of the calling objective, used in error messages.

    Returns:
        (student, teacher) as float tensors with unit-norm rows (teacher on the student's device).
    """
    if student.ndim != 2 or teacher.ndim != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"{where}: student_embeddings and teacher_embeddings must both be (M, D) with the "
            f"same shape, got {tuple(student.shape)} and {tuple(teacher.shape)}; rows must be "
            "paired region by region."
        )
    teacher = teacher.detach().to(device=student.device, dtype=student.dtype)
    return F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)


def zero_loss(reference: torch.Tensor) -> torch.Tensor:
    """A scalar zero connected to ``reference``'s graph (so backward works and gives zeros)."""
    return reference.sum() * 0.0
