"""HierKD instance level: the official KD_L2Loss, the proposals it distils, and one training
step of an OV R-CNN with an online teacher."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import instantiate
from detectron2.structures import Boxes, pairwise_iou
from detectron2.utils.events import EventStorage
from torch import nn

from ovdet.methods.hierkd import (
    HierKDInstanceDistillation,
    HierKDInstanceDistiller,
    hierkd_instance_distiller,
)

C_TRAIN, D = 5, 16


def official_kd_l2(cls_feat, clip_ve_feats, loss_weight=0.05):
    """mengqiDyangge/HierKD: ``ATSSZSDSFLHead.forward_single`` normalises the anchor feature,
    ``distill_instance`` the CLIP feature (``x / (x.norm(dim=-1, keepdim=True) + 1e-10)``),
    ``kd_ins_loss.py::KD_L2Loss.forward``: ``loss_weight * (pred - target).norm(dim=-1).mean()``.
    """
    pred = cls_feat / (cls_feat.norm(dim=-1, keepdim=True) + 1e-10)
    target = clip_ve_feats / (clip_ve_feats.norm(dim=-1, keepdim=True) + 1e-10)
    distance = (pred - target).norm(dim=-1).mean()
    return loss_weight * distance


def test_objective_is_the_official_kd_l2_loss():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(7, 32, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(7, 32, generator=g, dtype=torch.float64, requires_grad=True)
    out = HierKDInstanceDistillation()(student, teacher)
    assert set(out) == {"loss_hierkd_instance"}
    expected = official_kd_l2(student, teacher.detach())
    assert out["loss_hierkd_instance"].item() == pytest.approx(expected.item(), rel=1e-9)
    # by hand: unit rows at angle t are 2 sin(t / 2) apart (the L2 norm, not its square)
    hand = HierKDInstanceDistillation(weight=1.0)(
        torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    )["loss_hierkd_instance"]
    assert hand.item() == pytest.approx(2**0.5)
    out["loss_hierkd_instance"].backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    empty = torch.zeros(0, 8, requires_grad=True)
    zero = HierKDInstanceDistillation()(empty, torch.zeros(0, 8))["loss_hierkd_instance"]
    assert zero.item() == 0.0 and zero.requires_grad


class RecordingTeacher:
    """Teacher embedding = a fixed projection of the box coordinates; records its inputs."""

    def __init__(self):
        self.proj = nn.Linear(4, D)
        self.boxes = []
        self.grad_enabled = None

    def __call__(self, batched_inputs):
        self.grad_enabled = torch.is_grad_enabled()
        self.boxes = [x["teacher_proposals"].clone() for x in batched_inputs]
        assert all(x["image"].shape == (3, 64, 64) for x in batched_inputs)
        return [F.normalize(self.proj(b / 64), dim=1) for b in self.boxes]


def test_select_keeps_proposals_matching_a_ground_truth_box():
    distiller = HierKDInstanceDistiller(HierKDInstanceDistillation(), RecordingTeacher())
    gt = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    proposals = Boxes(
        torch.tensor(
            [
                [0.0, 0.0, 10.0, 10.0],  # IoU 1
                [0.0, 0.0, 10.0, 20.0],  # IoU 0.5: kept (>=)
                [0.0, 0.0, 10.0, 21.0],  # IoU < 0.5
                [20.0, 20.0, 30.0, 30.0],  # IoU 0
            ]
        )
    )
    assert distiller.select(gt, proposals).tensor.tolist() == proposals.tensor[:2].tolist()
    assert len(distiller.select(Boxes(torch.zeros(0, 4)), proposals)) == 0
    capped = HierKDInstanceDistiller(
        HierKDInstanceDistillation(), RecordingTeacher(), max_per_image=1, seed=3
    )
    picks = [capped.select(gt, proposals).tensor.tolist() for _ in range(8)]
    assert all(len(p) == 1 and p[0] in proposals.tensor[:2].tolist() for p in picks)
    again = HierKDInstanceDistiller(
        HierKDInstanceDistillation(), RecordingTeacher(), max_per_image=1, seed=3
    )
    assert [again.select(gt, proposals).tensor.tolist() for _ in range(8)] == picks


def test_training_step_distils_foreground_proposals(tiny_fpn_config, make_batch):
    teacher = RecordingTeacher()
    cfg = tiny_fpn_config(torch.randn(C_TRAIN, D, generator=torch.Generator().manual_seed(1)))
    cfg.model.distillers = [hierkd_instance_distiller(teacher, iou_threshold=0.3)]
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    distiller = model.distillers[0]
    assert isinstance(distiller, HierKDInstanceDistiller)
    assert distiller.objective.weight == 0.05 and distiller.max_per_image == 128
    assert not any("teacher" in k for k in model.state_dict())
    batch = make_batch(C_TRAIN)
    torch.manual_seed(0)
    with EventStorage():
        losses = model(batch)
    assert "loss_hierkd_instance" in losses
    assert teacher.grad_enabled is False
    kept, none = teacher.boxes
    assert len(kept) > 0 and len(none) == 0  # the second image has no ground-truth box
    iou = pairwise_iou(batch[0]["instances"].gt_boxes, Boxes(kept)).max(dim=0).values
    assert bool((iou >= 0.3).all())
    with torch.no_grad():
        features = model.backbone(model.preprocess_image(batch).tensor)
        student = model.roi_heads.region_embeddings(features, [Boxes(kept), Boxes(none)])
        target = torch.cat(
            teacher(
                [{"image": x["image"], "teacher_proposals": b} for x, b in zip(batch, (kept, none))]
            )
        )
    expected = official_kd_l2(student, target)
    assert losses["loss_hierkd_instance"].item() == pytest.approx(expected.item(), rel=1e-5)
    losses["loss_hierkd_instance"].backward()
    assert model.roi_heads.box_head.fc1.weight.grad.abs().sum() > 0


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="OnlineRegionTeacher"):
        HierKDInstanceDistiller(HierKDInstanceDistillation(), teacher="clip")
    with pytest.raises(ValueError, match="iou_threshold"):
        HierKDInstanceDistiller(HierKDInstanceDistillation(), RecordingTeacher(), iou_threshold=0)
    with pytest.raises(ValueError, match="max_per_image"):
        HierKDInstanceDistiller(HierKDInstanceDistillation(), RecordingTeacher(), max_per_image=0)
