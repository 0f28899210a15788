"""OVFastRCNNOutputLayers and its classification losses: hand-computed loss values,
federated sampling, inference."""

from __future__ import annotations

import math

import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from ovdet.modeling import (
    FederatedClassification,
    OVFastRCNNOutputLayers,
    SigmoidClassification,
    SoftmaxClassification,
    TextEmbeddingClassifier,
    federated_class_weights,
    sample_federated_classes,
)

LOSSES = {
    "softmax": SoftmaxClassification,
    "sigmoid": SigmoidClassification,
    "federated": FederatedClassification,
}


def _predictor(c_train=2, loss_type="softmax", **kw) -> OVFastRCNNOutputLayers:
    loss_kw = {k: kw.pop(k) for k in ("prior_prob", "class_weights", "num_sampled") if k in kw}
    clf = TextEmbeddingClassifier(input_shape=5, train_embeddings=torch.randn(c_train, 4))
    return OVFastRCNNOutputLayers(
        ShapeSpec(channels=5),
        box2box_transform=Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0)),
        classifier=clf,
        cls_loss=LOSSES[loss_type](**loss_kw),
        **kw,
    )


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def _bce(logit: float, target: float) -> float:
    return _softplus(logit) - target * logit


SCORES = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [0.2, 0.1, -0.4]])  # C=2, bg last
GT = torch.tensor([1, 2, 0])


def test_class_agnostic_box_regression():
    p = _predictor(c_train=7)
    assert p.bbox_pred.out_features == 4
    assert not hasattr(p, "cls_score")
    assert p.num_classes == 7


def test_softmax_loss_hand_computed():
    p = _predictor()
    expected = 0.0
    for row, label in zip(SCORES.tolist(), GT.tolist()):
        expected += math.log(sum(math.exp(v) for v in row)) - row[label]
    expected /= 3
    assert p.cls_loss(SCORES, GT).item() == pytest.approx(expected, rel=1e-6)


def test_sigmoid_loss_hand_computed():
    p = _predictor(loss_type="sigmoid", prior_prob=0.01)
    b = -math.log(99.0)
    assert p.cls_loss.bias.item() == pytest.approx(b, rel=1e-6)
    assert "roi_heads" not in p.state_dict() and "cls_loss.bias" in p.state_dict()
    expected = 0.0
    for row, label in zip(SCORES.tolist(), GT.tolist()):
        for c in range(2):  # background (label 2) rows have all-zero targets
            expected += _bce(row[c] + b, 1.0 if c == label else 0.0)
    expected /= 3
    assert p.cls_loss(SCORES, GT).item() == pytest.approx(expected, rel=1e-6)


def test_federated_loss_hand_computed_on_gt_columns_only():
    # fed_num_classes=1 and GT classes {0, 1}: no negatives are sampled, both GT columns used.
    p = _predictor(
        c_train=3,
        loss_type="federated",
        class_weights=[1.0, 1.0, 1.0],
        num_sampled=1,
        prior_prob=0.5,
    )
    scores = torch.tensor([[1.0, 2.0, 0.5, 0.0], [0.0, -1.0, 3.0, 1.0], [0.3, 0.1, -0.4, 2.0]])
    gt = torch.tensor([1, 3, 0])  # 3 = background
    expected = 0.0
    for row, label in zip(scores.tolist(), gt.tolist()):
        for c in (0, 1):  # column 2 is neither a GT class nor sampled
            expected += _bce(row[c], 1.0 if c == label else 0.0)
    expected /= 3
    assert p.cls_loss(scores, gt).item() == pytest.approx(expected, rel=1e-6)
    # With every class in the federated set it reduces to the sigmoid loss.
    p_all = _predictor(
        c_train=3,
        loss_type="federated",
        class_weights=[1.0, 1.0, 1.0],
        num_sampled=50,
        prior_prob=0.5,
    )
    p_sig = _predictor(c_train=3, loss_type="sigmoid", prior_prob=0.5)
    torch.testing.assert_close(p_all.cls_loss(scores, gt), p_sig.cls_loss(scores, gt))


def test_federated_sampling_keeps_gt_classes():
    weights = federated_class_weights(torch.arange(100, dtype=torch.float32) + 1.0, 0.5)
    weights[10:20] = 0.0  # never sampled as negatives
    gt = torch.tensor([3, 50, 99, 100, 100, -1, 3])  # 100 = background, -1 = ignored
    for _ in range(5):
        classes = sample_federated_classes(gt, 100, 50, weights)
        assert classes.numel() == 50 == classes.unique().numel()
        assert classes[:3].tolist() == [3, 50, 99]
        assert not any(10 <= c < 20 for c in classes[3:].tolist())
        assert bool((classes < 100).all())
    # Fewer available classes than requested: returns what exists, no repeats.
    few = sample_federated_classes(torch.tensor([0]), 4, 50, torch.ones(4))
    assert sorted(few.tolist()) == [0, 1, 2, 3]
    assert federated_class_weights([4.0, 9.0]).tolist() == [2.0, 3.0]


def test_federated_requires_matching_weights():
    with pytest.raises(TypeError, match="class_weights"):
        _predictor(loss_type="federated")
    with pytest.raises(ValueError, match="3 entries.*2 classes"):
        _predictor(loss_type="federated", class_weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        FederatedClassification([1.0, -1.0])
    with pytest.raises(ValueError, match="prior_prob"):
        SigmoidClassification(prior_prob=1.0)
    clf = TextEmbeddingClassifier(input_shape=5, train_embeddings=torch.randn(2, 4))
    with pytest.raises(TypeError, match="cls_loss must be a ClassificationLoss"):
        OVFastRCNNOutputLayers(
            ShapeSpec(channels=5),
            box2box_transform=Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0)),
            classifier=clf,
            cls_loss=torch.nn.CrossEntropyLoss(),
        )


def _proposals(n0: int, n1: int) -> list[Instances]:
    out = []
    for n in (n0, n1):
        inst = Instances((64, 64))
        xy = torch.rand(n, 2) * 30
        inst.proposal_boxes = Boxes(torch.cat([xy, xy + 10 + torch.rand(n, 2) * 20], dim=1))
        out.append(inst)
    return out


def test_losses_with_empty_and_background_images():
    p = _predictor(c_train=2)
    props = _proposals(3, 2)
    props[0].gt_classes = torch.tensor([0, 1, 2])
    props[0].gt_boxes = Boxes(props[0].proposal_boxes.tensor + 1.0)
    props[1].gt_classes = torch.tensor([2, 2])  # no GT in this image: background only
    with EventStorage():
        losses = p.losses(p(torch.randn(5, 5)), props)
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_box_reg"].item() > 0


@pytest.mark.parametrize("loss_type", ["softmax", "sigmoid"])
@pytest.mark.parametrize("num_classes", [1, 7, 1203])
def test_inference_follows_active_vocabulary(loss_type, num_classes):
    p = _predictor(c_train=2, loss_type=loss_type, test_score_thresh=0.0).eval()
    p.set_vocabulary(torch.randn(num_classes, 4))
    props = _proposals(5, 0)
    with torch.no_grad():
        preds = p(torch.randn(5, 5))
        assert preds[0].shape == (5, num_classes + 1) and preds[1].shape == (5, 4)
        probs = p.predict_probs(preds, props)
        if loss_type == "sigmoid":
            assert bool((probs[0][:, -1] == 0).all())
        instances, kept = p.inference(preds, props)
    assert len(instances) == 2 and len(instances[1]) == 0
    inst = instances[0]
    assert len(inst) > 0
    assert bool((inst.pred_classes < num_classes).all())
    assert inst.pred_boxes.tensor.shape[1] == 4
    # class-agnostic boxes: each detection's box is its proposal's single regressed box
    boxes = p.predict_boxes(preds, props)[0]
    torch.testing.assert_close(inst.pred_boxes.tensor, boxes[kept[0]].clamp(0, 64))
