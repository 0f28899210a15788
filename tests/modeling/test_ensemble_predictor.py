"""ViLD-ensemble predictor: score formula on hand numbers, base/novel lambda, OVRCNN wiring."""

from __future__ import annotations

import math

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes
from detectron2.utils.events import EventStorage

from ovdet.modeling import TextEmbeddingClassifier
from ovdet.modeling.distill import ViLDEnsembleHead, ViLDImageDistillation
from ovdet.modeling.distill.distillers import RegionDistiller
from ovdet.modeling.roi_heads import ViLDEnsembleBoxHead
from ovdet.modeling.roi_heads.ensemble_predictor import OVEnsembleOutputLayers

TAU = 0.5


def _hand_predictor(is_base) -> OVEnsembleOutputLayers:
    """2-d features, classes t_1 = (1, 0), t_2 = (0, 1); identity text head, swapping image head."""
    classifier = TextEmbeddingClassifier(
        input_shape=2, train_embeddings=torch.eye(2), temperature=TAU
    )
    image_head = ViLDEnsembleHead(2, 2, temperature=TAU)
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
        image_head=image_head,
        test_is_base=torch.tensor(is_base),
    )


def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def _hand_scores(is_base: list[bool], lam: float = 2.0 / 3.0) -> list[float]:
    """x = (3, 1): text embedding (3, 1)/sqrt(10), image embedding (1, 3)/sqrt(10)."""
    r = math.sqrt(10.0)
    bg = -(3.0 + 1.0) / (r * math.sqrt(2.0))
    p_text = _softmax([3.0 / r / TAU, 1.0 / r / TAU, bg / TAU])
    p_image = _softmax([1.0 / r / TAU, 3.0 / r / TAU])
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
    x = torch.tensor([[3.0, 1.0]])
    with torch.no_grad():
        probs, deltas = predictor(x)
    assert deltas.shape == (1, 4)
    assert probs[0].tolist() == pytest.approx(_hand_scores(is_base), rel=1e-5)
    split = predictor.predict_probs((probs, deltas), [Boxes(torch.zeros(1, 4))])
    assert len(split) == 1 and torch.equal(split[0], probs)


def test_lambda_weighting_differs_for_base_and_novel():
    x = torch.tensor([[3.0, 1.0]])
    with torch.no_grad():
        base = _hand_predictor([True, True]).eval()(x)[0][0]
        novel = _hand_predictor([False, False]).eval()(x)[0][0]
    # class 0: the text head is confident, the image head is not -> base trusts text more
    assert base[0] > novel[0]
    # class 1: the image head is confident -> novel trusts the image head more
    assert novel[1] > base[1]
    assert base[2] == novel[2]  # background from the text head either way
    assert base[:2].tolist() != pytest.approx(novel[:2].tolist())


def test_training_forward_returns_text_logits_and_embed_is_image_head():
    predictor = _hand_predictor([True, False]).train()
    x = torch.tensor([[3.0, 1.0]])
    logits, _ = predictor(x)
    assert torch.allclose(logits, predictor.classifier(x))
    r = math.sqrt(10.0)
    assert predictor.embed(x)[0].tolist() == pytest.approx([1 / r, 3 / r], rel=1e-6)
    assert predictor.text_embed(x)[0].tolist() == pytest.approx([3 / r, 1 / r], rel=1e-6)


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


def test_image_temperature_sets_the_default_image_head():
    def build(**kwargs):
        classifier = TextEmbeddingClassifier(input_shape=4, train_embeddings=torch.randn(3, 2))
        return OVEnsembleOutputLayers(
            4,
            box2box_transform=Box2BoxTransform(weights=(10, 10, 5, 5)),
            classifier=classifier,
            **kwargs,
        )

    assert build().image_head.temperature == 0.01  # ViLD's value (1 / OpenAI CLIP's scale)
    head = build(image_temperature=0.05).image_head
    assert head.temperature == 0.05 and head.proj.in_features == 4 and head.proj.out_features == 2
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="image_temperature must be a positive number"):
            build(image_temperature=bad)


@pytest.mark.parametrize("separate_box_head", [True, False])
def test_ovrcnn_ensemble_from_config_trains_image_head_and_infers(
    tiny_fpn_config, model_config_dir, make_batch, fake_encoder, separate_box_head
):
    vild_ensemble = LazyConfig.load(str(model_config_dir / "distill.py"), "vild_ensemble")
    names = ["cat", "dog", "car", "bus"]
    cfg = tiny_fpn_config(fake_encoder.encode(names[:3]))
    m = cfg.model
    m.roi_heads = vild_ensemble(m.roi_heads, names[:3], separate_box_head=separate_box_head)
    m.text_encoder = fake_encoder
    m.vocabulary = names[:3]
    m.distillers = [RegionDistiller(ViLDImageDistillation())]
    torch.manual_seed(0)
    model = instantiate(m).train()
    predictor = model.roi_heads.box_predictor
    assert isinstance(predictor, OVEnsembleOutputLayers)
    assert predictor.is_base.tolist() == [True, True, True]  # names passed by OVRCNN

    batch = make_batch(3)
    g = torch.Generator().manual_seed(2)
    for x, m_i in zip(batch, (3, 2)):
        x["teacher_proposals"] = torch.tensor([[4.0, 4.0, 40.0, 40.0]] * m_i)
        x["teacher_embeddings"] = torch.randn(m_i, 16, generator=g)
    with EventStorage():
        losses = model(batch)
    assert isinstance(model.roi_heads.box_head, ViLDEnsembleBoxHead) == separate_box_head
    heads = [predictor.image_head.proj.weight, predictor.classifier.linear.weight]
    # autograd.grad only runs the part of the graph that leads to the two heads
    image_grad, text_grad = torch.autograd.grad(
        losses["loss_vild_image"], heads, retain_graph=True, allow_unused=True
    )
    assert image_grad.abs().sum() > 0 and text_grad is None  # image head: distillation only
    image_grad, text_grad = torch.autograd.grad(
        losses["loss_cls"], heads, retain_graph=True, allow_unused=True
    )
    assert image_grad is None and text_grad.abs().sum() > 0  # text head: classification
    if separate_box_head:
        # ViLD-ensemble as published: each loss reaches only its own box head
        box_head = model.roi_heads.box_head
        assert isinstance(box_head, ViLDEnsembleBoxHead)
        fcs = [box_head.text_head.fc1.weight, box_head.image_head.fc1.weight]
        text_fc, image_fc = torch.autograd.grad(
            losses["loss_vild_image"], fcs, retain_graph=True, allow_unused=True
        )
        assert image_fc.abs().sum() > 0
        assert text_fc is None  # distilled regions never run through the text head
        # ... and their embedding is the image part of the full two-branch forward
        feats = {k: v.detach() for k, v in model.backbone(torch.randn(1, 3, 64, 64)).items()}
        boxes = [Boxes(torch.tensor([[4.0, 4.0, 40.0, 40.0], [10.0, 8.0, 30.0, 50.0]]))]
        pooled = model.roi_heads.box_pooler(
            [feats[f] for f in model.roi_heads.box_in_features], boxes
        )
        assert torch.allclose(
            model.roi_heads.region_embeddings(feats, boxes),
            predictor.embed(box_head(pooled)),
            atol=1e-6,
        )
        text_fc, image_fc = torch.autograd.grad(losses["loss_cls"], fcs, allow_unused=True)
        assert text_fc.abs().sum() > 0
        assert image_fc is None or image_fc.abs().sum() == 0

    model.eval()
    model.set_vocabulary(names)  # "bus" is novel
    assert predictor.is_base.tolist() == [True, True, True, False]
    inputs = [{"image": batch[0]["image"], "height": 64, "width": 64}]
    with torch.no_grad():
        inst = model(inputs)[0]["instances"]
    assert len(inst) > 0 and bool((inst.pred_classes < 4).all())
    assert bool((inst.scores >= 0).all()) and bool((inst.scores <= 1).all())
    model.set_vocabulary(torch.randn(2, 16))  # embeddings without names: all novel
    assert predictor.is_base.tolist() == [False, False]
    model.set_vocabulary(torch.randn(2, 16), names_for_embeddings=["dog", "plane"])
    assert predictor.is_base.tolist() == [True, False]


def test_ensemble_box_head_concatenates_separate_heads_and_predictor_splits_them():
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.roi_heads import FastRCNNConvFCHead

    shape = ShapeSpec(channels=4, height=3, width=3)
    heads = [FastRCNNConvFCHead(shape, conv_dims=[], fc_dims=[d]) for d in (5, 2)]
    box_head = ViLDEnsembleBoxHead(*heads)
    assert box_head.output_shape.channels == 7
    pooled = torch.randn(6, 4, 3, 3)
    out = box_head(pooled)
    assert torch.equal(out[:, :5], heads[0](pooled)) and torch.equal(out[:, 5:], heads[1](pooled))
    with pytest.raises(ValueError, match="same module"):
        ViLDEnsembleBoxHead(heads[0], heads[0])

    classifier = TextEmbeddingClassifier(
        input_shape=5, train_embeddings=torch.eye(2), temperature=TAU
    )
    predictor = OVEnsembleOutputLayers(
        5,
        box2box_transform=Box2BoxTransform(weights=(10, 10, 5, 5)),
        classifier=classifier,
        image_input_size=2,
        test_is_base=torch.tensor([True, False]),
    )
    assert predictor.image_head.proj.in_features == 2
    assert torch.allclose(predictor.embed(out), predictor.image_head.embed(out[:, 5:]))
    assert torch.allclose(predictor.text_embed(out), classifier.embed(out[:, :5]))
    predictor.train()
    logits, deltas = predictor(out)
    assert logits.shape == (6, 3) and deltas.shape == (6, 4)
    with pytest.raises(ValueError, match="6 columns, expected 7"):
        predictor(torch.randn(6, 6))


def test_ensemble_box_head_detach_keeps_distillation_out_of_the_backbone(
    tiny_fpn_config, model_config_dir, make_batch, fake_encoder
):
    vild_ensemble = LazyConfig.load(str(model_config_dir / "distill.py"), "vild_ensemble")
    names = ["cat", "dog", "car"]
    cfg = tiny_fpn_config(fake_encoder.encode(names))
    cfg.model.roi_heads = vild_ensemble(cfg.model.roi_heads, names)
    cfg.model.roi_heads.box_head.detach_image_input = True
    cfg.model.text_encoder = fake_encoder
    cfg.model.vocabulary = names
    cfg.model.distillers = [RegionDistiller(ViLDImageDistillation())]
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    batch = make_batch(3)
    for x in batch:
        x["teacher_proposals"] = torch.tensor([[4.0, 4.0, 40.0, 40.0]] * 2)
        x["teacher_embeddings"] = torch.randn(2, 16)
    with EventStorage():
        losses = model(batch)
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    image_fc = model.roi_heads.box_head.image_head.fc1.weight
    grads = torch.autograd.grad(
        losses["loss_vild_image"], [*backbone, image_fc], retain_graph=True, allow_unused=True
    )
    assert all(g is None or g.abs().sum() == 0 for g in grads[:-1])  # backbone untouched
    assert grads[-1].abs().sum() > 0  # the image head still learns
    cls_grads = torch.autograd.grad(losses["loss_cls"], backbone, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in cls_grads)
