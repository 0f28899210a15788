"""ViLD-ensemble: predictor scores on hand numbers (each head with its own features and
temperature), base/novel flags, and the ROI heads / OVRCNN wiring from the config helper."""

from __future__ import annotations

import math

import pytest
import torch
from detectron2.config import instantiate
from detectron2.layers import ShapeSpec
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads import FastRCNNConvFCHead
from detectron2.structures import Boxes
from detectron2.utils.events import EventStorage

from ovdet.methods.vild import vild_distiller
from ovdet.methods.vild_ensemble import (
    EnsembleLogits,
    OVEnsembleOutputLayers,
    ViLDEnsembleBoxHead,
    ViLDEnsembleHead,
    ViLDEnsembleROIHeads,
    vild_ensemble,
)
from ovdet.modeling import TextEmbeddingClassifier

TAU_TEXT, TAU_IMAGE = 0.5, 0.25
# region features: text box head part (3, 1), image box head part (1, 2)
X = torch.tensor([[3.0, 1.0, 1.0, 2.0]])


def _hand_predictor(is_base) -> OVEnsembleOutputLayers:
    """2-d class embeddings t_1 = (1, 0), t_2 = (0, 1); identity text head, swapping image head."""
    classifier = TextEmbeddingClassifier(
        input_shape=2, train_embeddings=torch.eye(2), temperature=TAU_TEXT
    )
    image_head = ViLDEnsembleHead(2, 2, temperature=TAU_IMAGE)
    with torch.no_grad():
        classifier.linear.weight.copy_(torch.eye(2))
        classifier.linear.bias.zero_()
        classifier.bg_embedding.copy_(torch.tensor([-1.0, -1.0]))
        image_head.proj.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        image_head.proj.bias.zero_()
    return OVEnsembleOutputLayers(
        2,
        box2box_transform=Box2BoxTransform(weights=(10, 10, 5, 5)),
        classifier=classifier,
        image_input_size=2,
        image_head=image_head,
        test_is_base=torch.tensor(is_base),
    )


def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def _hand_scores(is_base: list[bool], lam: float = 2.0 / 3.0) -> list[float]:
    """Text embedding (3, 1)/sqrt(10) at tau 0.5; image embedding (2, 1)/sqrt(5) at tau 0.25."""
    r, s = math.sqrt(10.0), math.sqrt(5.0)
    bg = -(3.0 + 1.0) / (r * math.sqrt(2.0))
    p_text = _softmax([3.0 / r / TAU_TEXT, 1.0 / r / TAU_TEXT, bg / TAU_TEXT])
    p_image = _softmax([2.0 / s / TAU_IMAGE, 1.0 / s / TAU_IMAGE])
    out = []
    for c in range(2):
        if is_base[c]:
            out.append(p_text[c] ** lam * p_image[c] ** (1 - lam))
        else:
            out.append(p_text[c] ** (1 - lam) * p_image[c] ** lam)
    return out + [p_text[2]]


@pytest.mark.parametrize("is_base", [[True, False], [False, True], [True, True]])
def test_ensemble_scores_equal_the_formula(is_base):
    predictor = _hand_predictor(is_base).eval()
    with torch.no_grad():
        predictions = predictor(X)
    logits, deltas = predictions
    assert isinstance(logits, EnsembleLogits) and deltas.shape == (1, 4)
    (probs,) = predictor.predict_probs(predictions, [Boxes(torch.zeros(1, 4))])
    assert probs[0].tolist() == pytest.approx(_hand_scores(is_base), rel=1e-5)
    # the heads are not interchangeable: swapping them gives other numbers
    swapped = _hand_predictor(is_base).eval()
    with torch.no_grad():
        swapped_probs = swapped.ensemble_probs(EnsembleLogits(logits.text, logits.image.flip(1)))
    assert swapped_probs[0].tolist() != pytest.approx(_hand_scores(is_base), rel=1e-3)


def test_lambda_weighting_differs_for_base_and_novel():
    with torch.no_grad():
        base_p = _hand_predictor([True, True]).eval()
        novel_p = _hand_predictor([False, False]).eval()
        base = base_p.ensemble_probs(base_p(X)[0])[0]
        novel = novel_p.ensemble_probs(novel_p(X)[0])[0]
    # class 0: text head 0.93, image head 0.85 -> novel (image-weighted) lower
    assert base.tolist() == pytest.approx(_hand_scores([True, True]), rel=1e-5)
    assert novel.tolist() == pytest.approx(_hand_scores([False, False]), rel=1e-5)
    assert base[2] == novel[2]  # background from the text head either way


def test_training_logits_losses_and_embeddings():
    predictor = _hand_predictor([True, False]).train()
    logits, _ = predictor(X)
    # training scores the training vocabulary: the same two classes here
    assert torch.allclose(logits.text, predictor.classifier(X[:, :2]))
    r, s = math.sqrt(10.0), math.sqrt(5.0)
    assert logits.image[0].tolist() == pytest.approx([2 / s / TAU_IMAGE, 1 / s / TAU_IMAGE])
    assert predictor.embed(X)[0].tolist() == pytest.approx([3 / r, 1 / r], rel=1e-6)
    assert predictor.image_embed(X[:, 2:])[0].tolist() == pytest.approx([2 / s, 1 / s])


def test_base_mask_api():
    predictor = _hand_predictor([True, False])
    assert predictor.is_base.tolist() == [True, False]
    predictor.base_names = frozenset({"cat"})
    predictor.set_class_names(["dog", "cat"])
    assert predictor.is_base.tolist() == [False, True]
    predictor.set_vocabulary(torch.randn(3, 2), names=["cat", "cow", "bus"])
    assert predictor.is_base.tolist() == [True, False, False]
    predictor.set_vocabulary(torch.randn(2, 2), is_base=torch.tensor([True, True]))
    assert predictor.is_base.tolist() == [True, True]
    predictor.set_vocabulary(torch.randn(4, 2))  # no names: unknown -> novel
    assert predictor.is_base.tolist() == [False] * 4
    with pytest.raises(ValueError, match=r"\(4,\) bool mask"):
        predictor.set_vocabulary(torch.randn(4, 2), is_base=[True])
    with pytest.raises(ValueError, match="3 class names for a test vocabulary of 4"):
        predictor.set_class_names(["a", "b", "c"])


def test_default_image_head_from_temperature_and_lambda():
    def build(**kwargs):
        classifier = TextEmbeddingClassifier(input_shape=4, train_embeddings=torch.randn(3, 2))
        return OVEnsembleOutputLayers(
            4,
            box2box_transform=Box2BoxTransform(weights=(10, 10, 5, 5)),
            classifier=classifier,
            image_input_size=6,
            **kwargs,
        )

    head = build().image_head
    assert head.temperature == 0.01 and head.lam == pytest.approx(2 / 3)  # ViLD's values
    head = build(image_temperature=0.05, lam=0.5).image_head
    assert head.temperature == 0.05 and head.lam == 0.5
    assert head.proj.in_features == 6 and head.proj.out_features == 2
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            build(image_temperature=bad)
    with pytest.raises(ValueError, match="6 columns, expected 10"):
        build().train()(torch.randn(2, 6))


def test_box_head_concatenates_separate_heads():
    shape = ShapeSpec(channels=4, height=3, width=3)
    heads = [FastRCNNConvFCHead(shape, conv_dims=[], fc_dims=[d]) for d in (5, 2)]
    box_head = ViLDEnsembleBoxHead(*heads)
    assert box_head.output_shape.channels == 7
    pooled = torch.randn(6, 4, 3, 3)
    out = box_head(pooled)
    assert torch.equal(out[:, :5], heads[0](pooled)) and torch.equal(out[:, 5:], heads[1](pooled))
    assert torch.equal(box_head.image_features(pooled), heads[1](pooled))
    with pytest.raises(ValueError, match="same module"):
        ViLDEnsembleBoxHead(heads[0], heads[0])


def _ensemble_model(tiny_fpn_config, fake_encoder, names, **box_head):
    cfg = tiny_fpn_config(fake_encoder.encode(names))
    m = cfg.model
    m.roi_heads = vild_ensemble(m.roi_heads, names)
    for key, value in box_head.items():
        m.roi_heads.box_head[key] = value
    m.text_encoder = fake_encoder
    m.vocabulary = names
    m.distillers = [vild_distiller()]
    torch.manual_seed(0)
    return instantiate(m).train()


def _with_targets(batch, counts=(3, 2), seed=2):
    g = torch.Generator().manual_seed(seed)
    for x, m_i in zip(batch, counts):
        x["teacher_proposals"] = torch.tensor([[4.0, 4.0, 40.0, 40.0]] * m_i)
        x["teacher_embeddings"] = torch.randn(m_i, 16, generator=g)
    return batch


def test_ovrcnn_from_config_helper_trains_each_head_with_its_loss_and_infers(
    tiny_fpn_config, make_batch, fake_encoder
):
    names = ["cat", "dog", "car", "bus"]
    model = _ensemble_model(tiny_fpn_config, fake_encoder, names[:3])
    assert isinstance(model.roi_heads, ViLDEnsembleROIHeads)
    predictor = model.roi_heads.box_predictor
    box_head = model.roi_heads.box_head
    assert isinstance(predictor, OVEnsembleOutputLayers)
    assert isinstance(box_head, ViLDEnsembleBoxHead)
    assert predictor.image_input_size == box_head.image_size == 64
    assert predictor.is_base.tolist() == [True, True, True]  # names passed by OVRCNN

    with EventStorage():
        losses = model(_with_targets(make_batch(3)))
    assert {"loss_cls", "loss_box_reg", "loss_vild_image"} <= set(losses)
    heads = [
        predictor.image_head.proj.weight,
        box_head.image_head.fc1.weight,
        predictor.classifier.linear.weight,
        box_head.text_head.fc1.weight,
    ]
    grads = torch.autograd.grad(
        losses["loss_vild_image"], heads, retain_graph=True, allow_unused=True
    )
    # distillation reaches the image head and its box head only
    assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0
    assert grads[2] is None and grads[3] is None
    grads = torch.autograd.grad(losses["loss_cls"], heads, retain_graph=True, allow_unused=True)
    # classification: the text heads only (the image box head's columns are cut off after
    # the concatenation, so its gradient is exactly zero)
    assert grads[0] is None and float(grads[1].abs().sum()) == 0.0
    assert grads[2].abs().sum() > 0 and grads[3].abs().sum() > 0

    # the distilled embedding is the image part of the full two-branch forward
    feats = {k: v.detach() for k, v in model.backbone(torch.randn(1, 3, 64, 64)).items()}
    boxes = [Boxes(torch.tensor([[4.0, 4.0, 40.0, 40.0], [10.0, 8.0, 30.0, 50.0]]))]
    pooled = model.roi_heads.box_pooler([feats[f] for f in model.roi_heads.box_in_features], boxes)
    text_part, image_part = predictor.split_features(box_head(pooled))
    assert torch.allclose(
        model.roi_heads.region_embeddings(feats, boxes),
        predictor.image_embed(image_part),
        atol=1e-6,
    )
    assert not torch.allclose(predictor.image_embed(image_part), predictor.embed(box_head(pooled)))

    model.eval()
    model.set_vocabulary(names)  # "bus" is novel
    assert predictor.is_base.tolist() == [True, True, True, False]
    inputs = [{"image": make_batch(3)[0]["image"], "height": 64, "width": 64}]
    with torch.no_grad():
        inst = model(inputs)[0]["instances"]
    assert len(inst) > 0 and bool((inst.pred_classes < 4).all())
    assert bool((inst.scores >= 0).all()) and bool((inst.scores <= 1).all())
    model.set_vocabulary(torch.randn(2, 16))  # embeddings without names: all novel
    assert predictor.is_base.tolist() == [False, False]
    model.set_vocabulary(torch.randn(2, 16), names_for_embeddings=["dog", "plane"])
    assert predictor.is_base.tolist() == [True, False]


def test_detach_image_input_keeps_distillation_out_of_the_backbone(
    tiny_fpn_config, make_batch, fake_encoder
):
    model = _ensemble_model(
        tiny_fpn_config, fake_encoder, ["cat", "dog", "car"], detach_image_input=True
    )
    with EventStorage():
        losses = model(_with_targets(make_batch(3), counts=(2, 2)))
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    image_fc = model.roi_heads.box_head.image_head.fc1.weight
    grads = torch.autograd.grad(
        losses["loss_vild_image"], [*backbone, image_fc], retain_graph=True, allow_unused=True
    )
    assert all(g is None or g.abs().sum() == 0 for g in grads[:-1])  # backbone untouched
    assert grads[-1].abs().sum() > 0  # the image head still learns
    cls_grads = torch.autograd.grad(losses["loss_cls"], backbone, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in cls_grads)


def test_roi_heads_refuse_a_plain_box_head(tiny_fpn_config, fake_encoder):
    cfg = tiny_fpn_config(fake_encoder.encode(["cat", "dog"]))
    roi = vild_ensemble(cfg.model.roi_heads, ["cat"])
    roi.box_head = roi.box_head.text_head  # a plain FastRCNNConvFCHead
    cfg.model.roi_heads = roi
    with pytest.raises(TypeError, match="box_head must be a ViLDEnsembleBoxHead"):
        instantiate(cfg.model)
