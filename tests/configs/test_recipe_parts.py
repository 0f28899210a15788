"""The parts the published recipes need beyond ovdet's core: ViLD's masked softmax (pinned
against the official expression), RKD's bias-free sigmoid loss, large-scale jitter that crops
polygon masks without shapely, and step schedules with warmup."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import polygons_to_bitmask

from ovdet.data import register_ov_dataset
from ovdet.data.crop import PolygonClipCropTransform, PolygonFixedSizeCrop, clip_polygon
from ovdet.modeling.roi_heads.cls_losses import MaskedSoftmaxClassification, SigmoidClassification

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


# ------------------------------------------------------------------ ViLD's masked softmax
def official_vild_class_loss(class_outputs, class_targets, rare_mask):
    """tensorflow/tpu projects/vild/modeling/vild_losses.py::FastrcnnClassLoss written in torch:
    background in column 0, ``class_outputs * rare_mask`` then softmax cross-entropy averaged
    over the regions (``SUM_BY_NONZERO_WEIGHTS`` with unit weights)."""
    masked = class_outputs * rare_mask[None, :]
    return F.cross_entropy(masked, class_targets, reduction="mean")


def test_masked_softmax_is_vilds_mask_rare():
    g = torch.Generator().manual_seed(0)
    num_classes = 7
    keep = torch.tensor([True, False, True, True, False, True, True])
    logits = torch.randn(9, num_classes + 1, generator=g, dtype=torch.float64) * 30
    labels = torch.tensor([0, 2, 3, 5, 6, 7, 7, 0, -1])  # 7 = background (ovdet: last column)
    loss = MaskedSoftmaxClassification(keep)(logits, labels)
    # the official layout: background first, mask 1 for the background and kept classes
    tf_logits = torch.cat([logits[:, -1:], logits[:, :-1]], dim=1)[:8]
    tf_labels = torch.where(labels[:8] == num_classes, 0, labels[:8] + 1)
    tf_mask = torch.cat([torch.ones(1), keep.double()])
    expected = official_vild_class_loss(tf_logits, tf_labels, tf_mask)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    # a masked class is a constant logit 0 (in the partition function), not removed
    assert loss.item() != pytest.approx(
        MaskedSoftmaxClassification(keep, fill="exclude")(logits, labels).item()
    )
    excluded = MaskedSoftmaxClassification(keep, fill="exclude")(logits, labels)
    by_hand = F.cross_entropy(
        logits[:8].masked_fill(~torch.cat([keep, torch.ones(1, dtype=bool)]), -1e30), labels[:8]
    )
    assert excluded.item() == pytest.approx(by_hand.item(), rel=1e-9)
    # inference: the plain softmax (ViLD's post-processing does not mask)
    assert torch.allclose(MaskedSoftmaxClassification(keep).probs(logits), logits.softmax(-1))


def test_masked_softmax_refuses_bad_input():
    keep = torch.tensor([True, False, True])
    loss = MaskedSoftmaxClassification(keep)
    with pytest.raises(ValueError, match="masked classes \\[1\\]"):
        loss(torch.randn(2, 4), torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="training vocabulary has 4"):
        loss.check(4)
    with pytest.raises(ValueError, match="fill"):
        MaskedSoftmaxClassification(keep, fill="nan")
    with pytest.raises(ValueError, match="masks every class"):
        MaskedSoftmaxClassification([False, False])
    empty = loss(torch.randn(2, 4, requires_grad=True), torch.tensor([-1, -1]))
    assert empty.item() == 0.0 and empty.requires_grad


# ------------------------------------------------------------------ RKD's sigmoid loss
def official_rkd_sigmoid_ce(pred_class_logits, gt_classes):
    """hanoonaR/object-centric-ovd ``CustomFastRCNNOutputLayers.sigmoid_cross_entropy_loss``
    without the federated / zero-category weights (OV-COCO's training vocabulary is the base
    classes), and ``ZeroShotClassifier`` without a bias (``USE_BIAS: 0.0``)."""
    b, c = pred_class_logits.shape[0], pred_class_logits.shape[1] - 1
    target = pred_class_logits.new_zeros(b, c + 1)
    target[range(len(gt_classes)), gt_classes] = 1
    loss = F.binary_cross_entropy_with_logits(
        pred_class_logits[:, :-1], target[:, :c], reduction="none"
    )
    return loss.sum() / b


def test_sigmoid_without_bias_is_rkds_coco_loss():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64) * 10
    labels = torch.tensor([0, 4, 2, 4, 3, 1])
    loss = SigmoidClassification(use_bias=False)
    assert not any(True for _ in loss.parameters())
    assert loss(logits, labels).item() == pytest.approx(
        official_rkd_sigmoid_ce(logits, labels).item(), rel=1e-12
    )
    assert torch.allclose(loss.probs(logits)[:, :-1], logits[:, :-1].sigmoid())
    with_bias = SigmoidClassification()
    assert with_bias.bias.item() == pytest.approx(-4.59512, abs=1e-5)  # RKD LVIS USE_BIAS -4.6


# ------------------------------------------------------------------ large-scale jitter
def test_polygon_clip_matches_the_cropped_mask():
    square = np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]])
    clipped = clip_polygon(square, 30, 0, 80, 40)
    assert sorted(map(tuple, clipped.tolist())) == sorted(
        [(30.0, 10.0), (50.0, 10.0), (50.0, 40.0), (30.0, 40.0)]
    )
    # a concave polygon leaving and re-entering the window: the same pixels as the full mask,
    # cropped
    u_shape = np.array(
        [[5, 5], [60, 5], [60, 60], [45, 60], [45, 20], [20, 20], [20, 60], [5, 60]], dtype=float
    )
    crop = PolygonClipCropTransform(0, 0, 64, 40, 64, 64)
    (polygon,) = crop.apply_polygons([u_shape])
    full = polygons_to_bitmask([u_shape.reshape(-1)], 64, 64)[:40, :64]
    mine = polygons_to_bitmask([polygon.reshape(-1)], 40, 64)
    assert (full != mine).mean() < 0.01
    assert crop.apply_polygons([square + 100]) == []  # outside: dropped


@pytest.fixture
def coco_sample_dataset(test_data):
    root = test_data / "coco_sample"
    name = "ovdet_test_recipe_lsj"
    register_ov_dataset(name, root / "annotations.json", root / "images", novel=["bus"])
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_vild_large_scale_jitter_on_coco_polygons(coco_sample_dataset, monkeypatch, tmp_path):
    """ViLD's training data: 1024 x 1024 crops of a jittered image, polygon masks cropped."""
    monkeypatch.setenv("OVDET_DATASETS", str(tmp_path))
    cfg = LazyConfig.load(str(CONFIGS / "ov_lvis/vild_text_r50_fpn_mask_scratch_lsj_180k.py"))
    loader = cfg.dataloader.train
    assert [a._target_.__name__ for a in loader.mapper.augmentations] == [
        "ResizeScale",
        "PolygonFixedSizeCrop",
        "RandomFlip",
    ]
    loader.dataset.names = coco_sample_dataset
    loader.total_batch_size = 3
    loader.num_workers = 0
    np.random.seed(0)
    batch = next(iter(instantiate(loader)))
    for item in batch:
        assert tuple(item["image"].shape) == (3, 1024, 1024)
        inst = item["instances"]
        assert len(inst) == len(inst.gt_masks)
        boxes = inst.gt_boxes.tensor
        assert bool((boxes >= 0).all()) and bool((boxes <= 1024).all())
    assert isinstance(PolygonFixedSizeCrop(crop_size=(8, 8)), PolygonFixedSizeCrop)


# ------------------------------------------------------------------ schedules
def test_step_schedule():
    step_schedule = runpy.run_path(str(CONFIGS / "common" / "schedules.py"))["step_schedule"]
    hierkd = instantiate(step_schedule(90000, [60000, 82500], warmup_iters=500))
    assert hierkd(0.0) == pytest.approx(0.001)
    assert hierkd(500 / 90000) == pytest.approx(1.0)
    assert hierkd(60000 / 90000) == pytest.approx(0.1)
    assert hierkd(82500 / 90000) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="need 3 values"):
        step_schedule(100, [50, 80], values=[1.0, 0.1])
    with pytest.raises(ValueError, match="ascend"):
        step_schedule(100, [80, 50])
    with pytest.raises(ValueError, match="ascend"):
        step_schedule(100, [50, 100])
