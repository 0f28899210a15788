"""ViLD-image and RKD objectives vs hand-computed values, gradients, empty inputs."""

from __future__ import annotations

import math

import pytest
import torch

from ovdet.methods.rkd import RKDDistillation
from ovdet.methods.vild import ViLDImageDistillation

# two regions, D = 2; the student rows are already unit vectors, the teacher rows are not
STUDENT = [[1.0, 0.0], [0.6, 0.8]]
TEACHER = [[3.0, 4.0], [0.0, -2.0]]  # normalised: (0.6, 0.8), (0, -1)


def unit(row):
    n = math.sqrt(sum(x * x for x in row))
    return [x / n for x in row]


def hand_l1():
    total = 0.0
    for s, t in zip(STUDENT, TEACHER):
        s, t = unit(s), unit(t)
        total += sum(abs(a - b) for a, b in zip(s, t))
    return total / len(STUDENT)


def hand_irm(norm):
    s_rows = [unit(r) for r in STUDENT]
    t_rows = [unit(r) for r in TEACHER]
    n = len(s_rows)
    total = 0.0
    for i in range(n):
        for j in range(n):
            d = sum(a * b for a, b in zip(s_rows[i], s_rows[j])) - sum(
                a * b for a, b in zip(t_rows[i], t_rows[j])
            )
            total += d * d if norm == "fro" else abs(d)
    return total / (n * n)


def test_vild_image_loss_value():
    # (|1-0.6| + |0-0.8| + |0.6-0| + |0.8+1|) / 2 = (1.2 + 2.4) / 2 = 1.8 ; times weight 0.5
    assert hand_l1() == pytest.approx(1.8)
    out = ViLDImageDistillation(weight=0.5)(torch.tensor(STUDENT), torch.tensor(TEACHER))
    assert set(out) == {"loss_vild_image"}
    assert out["loss_vild_image"].item() == pytest.approx(0.9, abs=1e-6)


def test_vild_image_normalises_the_student():
    out = ViLDImageDistillation(weight=1.0)(torch.tensor([[2.0, 0.0]]), torch.tensor([[5.0, 0.0]]))
    assert out["loss_vild_image"].item() == pytest.approx(0.0, abs=1e-7)


def test_rkd_loss_values():
    # S_s = [[1, .6], [.6, 1]], S_t = [[1, -.8], [-.8, 1]] -> off-diagonal diff 1.4 twice
    assert hand_irm("fro") == pytest.approx(2 * 1.4**2 / 4)
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    out = RKDDistillation(l1_weight=2.0, irm_weight=3.0)(student, teacher)
    assert set(out) == {"loss_rkd_l1", "loss_rkd_irm"}
    assert out["loss_rkd_l1"].item() == pytest.approx(2.0 * hand_l1(), abs=1e-6)
    assert out["loss_rkd_irm"].item() == pytest.approx(3.0 * hand_irm("fro"), abs=1e-6)
    out = RKDDistillation(irm_norm="l1")(student, teacher)
    assert out["loss_rkd_irm"].item() == pytest.approx(hand_irm("l1"), abs=1e-6)


@pytest.mark.parametrize("make", [lambda: ViLDImageDistillation(), lambda: RKDDistillation()])
def test_gradient_flows_only_into_the_student(make):
    torch.manual_seed(0)
    student = torch.randn(5, 8, requires_grad=True)
    teacher = torch.randn(5, 8, requires_grad=True)
    losses = make()(student, teacher)
    sum(losses.values()).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


@pytest.mark.parametrize("make", [lambda: ViLDImageDistillation(), lambda: RKDDistillation()])
def test_empty_regions_give_connected_zero(make):
    student = torch.zeros(0, 8, requires_grad=True)
    losses = make()(student, torch.zeros(0, 8))
    for value in losses.values():
        assert value.item() == 0.0 and value.requires_grad
    sum(losses.values()).backward()
    assert student.grad is not None and student.grad.shape == (0, 8)


def test_single_region_rkd_irm_is_zero_and_finite():
    out = RKDDistillation()(torch.randn(1, 4, requires_grad=True), torch.randn(1, 4))
    assert out["loss_rkd_irm"].item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(out["loss_rkd_l1"])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        ViLDImageDistillation()(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="irm_norm"):
        RKDDistillation(irm_norm="l2")
