"""ViLD-image and RKD objectives vs hand-computed values and the official RKD expressions,
gradients, empty inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ovdet.methods.rkd import RKDDistillation, RKDNormalisedDistillation, rkd_distiller
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


def test_rkd_normalised_loss_values():
    # S_s = [[1, .6], [.6, 1]], S_t = [[1, -.8], [-.8, 1]] -> off-diagonal diff 1.4 twice
    assert hand_irm("fro") == pytest.approx(2 * 1.4**2 / 4)
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    out = RKDNormalisedDistillation(l1_weight=2.0, irm_weight=3.0)(student, teacher)
    assert set(out) == {"loss_rkd_l1", "loss_rkd_irm"}
    assert out["loss_rkd_l1"].item() == pytest.approx(2.0 * hand_l1(), abs=1e-6)
    assert out["loss_rkd_irm"].item() == pytest.approx(3.0 * hand_irm("fro"), abs=1e-6)
    out = RKDNormalisedDistillation(irm_norm="l1")(student, teacher)
    assert out["loss_rkd_irm"].item() == pytest.approx(hand_irm("l1"), abs=1e-6)


def official_rkd(image_embeds, clip_embeds, l1_weight, irm_weight, rkd_temperature=100):
    """The official RKD terms, written as hanoonaR/object-centric-ovd computes them.

    ``ovd/modeling/roi_heads/standard_roi_heads.py`` (and ``res5_roi_heads.py``) normalise both
    embeddings (``F.normalize(..., p=2, dim=1)``); ``custom_fast_rcnn.py``:
    ``distil_l1_loss`` and ``irm_loss``.
    """
    image_features = F.normalize(image_embeds, p=2, dim=1)
    clip_features = F.normalize(clip_embeds, p=2, dim=1)
    # distil_l1_loss
    weight = l1_weight * rkd_temperature
    l1 = F.l1_loss(image_features, clip_features, reduction="mean") * weight
    # irm_loss
    weight = irm_weight * rkd_temperature
    # torch.nn.functional.normalize(input, p=2.0, dim=1): the official positional 1 is p
    g_img = F.normalize(torch.matmul(image_features, torch.t(image_features)), 1)
    g_clip = F.normalize(torch.matmul(clip_features, torch.t(clip_features)), 1)
    irm = torch.norm(g_img - g_clip) ** 2 * weight
    return l1, irm


def hand_official_irm():
    """sum_ij (rownorm(S_s) - rownorm(S_t))_ij^2 by hand, rows divided by their L1 norm."""
    s_rows = [unit(r) for r in STUDENT]
    t_rows = [unit(r) for r in TEACHER]

    def l1_unit(row):
        n = sum(abs(x) for x in row)
        return [x / n for x in row]

    def gram(rows):
        return [l1_unit([sum(a * b for a, b in zip(r, q)) for q in rows]) for r in rows]

    return sum((a - b) ** 2 for rs, rt in zip(gram(s_rows), gram(t_rows)) for a, b in zip(rs, rt))


def test_rkd_official_loss_values():
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    # rows of S_s / |row|_1: (1, .6) / 1.6; of S_t: (1, -.8) / 1.8 (and mirrored):
    # 2 * ((.625 - .5556)^2 + (.375 + .4444)^2)
    assert hand_official_irm() == pytest.approx(2 * ((5 / 8 - 5 / 9) ** 2 + (3 / 8 + 4 / 9) ** 2))
    out = RKDDistillation(l1_weight=0.15 * 100, irm_weight=0.15 * 100)(student, teacher)
    assert set(out) == {"loss_rkd_l1", "loss_rkd_irm"}
    # L1: the mean over N x D = 4 elements (sum 3.6), not the sum over D
    assert out["loss_rkd_l1"].item() == pytest.approx(15 * 3.6 / 4, rel=1e-6)
    assert out["loss_rkd_irm"].item() == pytest.approx(15 * hand_official_irm(), rel=1e-6)
    l1, irm = official_rkd(student, teacher, 0.15, 0.15)
    assert out["loss_rkd_l1"].item() == pytest.approx(l1.item(), rel=1e-6)
    assert out["loss_rkd_irm"].item() == pytest.approx(irm.item(), rel=1e-6)


def test_rkd_official_matches_official_expression_on_random_batches():
    g = torch.Generator().manual_seed(0)
    for num, dim in [(10, 512), (3, 7), (1, 4)]:
        student = torch.randn(num, dim, generator=g, dtype=torch.float64)
        teacher = torch.randn(num, dim, generator=g, dtype=torch.float64)
        out = RKDDistillation(l1_weight=25.0, irm_weight=13.0)(student, teacher)  # LVIS
        l1, irm = official_rkd(student, teacher, 0.25, 0.13)
        assert out["loss_rkd_l1"].item() == pytest.approx(l1.item(), rel=1e-12)
        assert out["loss_rkd_irm"].item() == pytest.approx(irm.item(), rel=1e-12, abs=1e-12)


def test_rkd_official_gradients_reach_only_the_student():
    g = torch.Generator().manual_seed(1)
    student = torch.randn(6, 16, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(6, 16, generator=g, dtype=torch.float64, requires_grad=True)
    out = RKDDistillation()(student, teacher)
    sum(out.values()).backward()
    assert teacher.grad is None
    reference = student.detach().clone().requires_grad_(True)
    sum(official_rkd(reference, teacher.detach(), 0.15, 0.15)).backward()
    torch.testing.assert_close(student.grad, reference.grad, rtol=1e-10, atol=1e-12)


def test_rkd_distiller_forms():
    official = rkd_distiller()
    assert official.objective._target_ is RKDDistillation
    assert official.objective.l1_weight == pytest.approx(15.0)  # 0.15 x rkd_temperature 100
    assert official.objective.irm_weight == pytest.approx(15.0)
    assert official.max_regions == 5
    lvis = rkd_distiller(official_l1_weight=0.25, official_irm_weight=0.13)
    assert (lvis.objective.l1_weight, lvis.objective.irm_weight) == pytest.approx((25.0, 13.0))
    # the OV-Shapes configs' objective: unchanged from before the official form existed
    shapes = rkd_distiller(form="normalised", embed_dim=128)
    assert shapes.objective._target_ is RKDNormalisedDistillation
    assert shapes.objective.l1_weight == pytest.approx(0.15 * 100 / 128)
    assert shapes.objective.irm_weight == 1.0 and shapes.objective.irm_norm == "fro"
    assert shapes.max_regions == 5
    with pytest.raises(ValueError, match="form must be one of"):
        rkd_distiller(form="paper")


ALL_OBJECTIVES = [
    lambda: ViLDImageDistillation(),
    lambda: RKDDistillation(),
    lambda: RKDNormalisedDistillation(),
]


@pytest.mark.parametrize("make", ALL_OBJECTIVES)
def test_gradient_flows_only_into_the_student(make):
    torch.manual_seed(0)
    student = torch.randn(5, 8, requires_grad=True)
    teacher = torch.randn(5, 8, requires_grad=True)
    losses = make()(student, teacher)
    sum(losses.values()).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


@pytest.mark.parametrize("make", ALL_OBJECTIVES)
def test_empty_regions_give_connected_zero(make):
    student = torch.zeros(0, 8, requires_grad=True)
    losses = make()(student, torch.zeros(0, 8))
    for value in losses.values():
        assert value.item() == 0.0 and value.requires_grad
    sum(losses.values()).backward()
    assert student.grad is not None and student.grad.shape == (0, 8)


@pytest.mark.parametrize("cls", [RKDDistillation, RKDNormalisedDistillation])
def test_single_region_rkd_irm_is_zero_and_finite(cls):
    out = cls()(torch.randn(1, 4, requires_grad=True), torch.randn(1, 4))
    assert out["loss_rkd_irm"].item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(out["loss_rkd_l1"])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        ViLDImageDistillation()(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="irm_norm"):
        RKDNormalisedDistillation(irm_norm="l2")
    with pytest.raises(ValueError, match="same shape"):
        RKDDistillation()(torch.randn(3, 4), torch.randn(3, 5))
