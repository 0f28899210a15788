"""``cls_loss="softmax"``: the region-word head trained with a softmax over the prompt's real
tokens and a learned background (cross-entropy against each region's readout tokens), scoring
a class by the probability mass on its readout tokens; padding has no effect."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from ovdet.methods.grounding import TextContext

from .test_detector import NAMES, _batch


def _proposals(gt_classes: list[int]) -> Instances:
    p = Instances((20, 20))
    n = len(gt_classes)
    p.proposal_boxes = Boxes(torch.tensor([[0.0, 0, 8, 8]] * n))
    p.gt_boxes = Boxes(torch.tensor([[1.0, 1, 9, 9]] * n))
    p.gt_classes = torch.tensor(gt_classes)
    return p


def _text(phrase_map: torch.Tensor, mask: torch.Tensor, class_rows, counts) -> TextContext:
    return TextContext(
        tokens=torch.randn(1, mask.shape[0], 24),
        mask=mask,
        phrase_map=phrase_map,
        class_rows=torch.tensor(class_rows),
        counts=counts,
    )


def test_softmax_loss_and_scores_by_hand(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:3], cls_loss="softmax")
    pred = model.roi_heads.box_predictor
    assert pred.cls_loss == "softmax" and pred.bg_embed.shape == (16,)
    # prompt: phrase 0 = tokens 0-1, phrase 1 = token 2, token 3 is padding; class 2 absent
    pmap = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([True, True, True, False])
    text = _text(pmap, mask, [0, 1, -1], [4])
    # regions of class 0, class 1, class 2 (not in the prompt), background (3)
    logits = torch.tensor(
        [
            [2.0, 1.0, -1.0, 9.0, 0.5],
            [0.0, -2.0, 3.0, -9.0, 1.0],
            [1.0, 1.0, 1.0, 5.0, 0.0],
            [-1.0, 0.0, 2.0, 0.0, 2.5],
        ]
    )  # (R, L + 1): the background logit last
    real = [0, 1, 2, 4]
    logp = logits[:, real].log_softmax(dim=1)  # over the real tokens and the background
    expected = -torch.stack(
        [
            0.5 * logp[0, 0] + 0.5 * logp[0, 1],  # the phrase's mass: half on each token
            logp[1, 2],
            logp[2, 3],  # a class not in the prompt trains as background
            logp[3, 3],
        ]
    ).mean()
    with pred.use_text(text):
        losses = pred.losses((logits, torch.zeros(4, 4)), [_proposals([0, 1, 2, 3])])
    torch.testing.assert_close(losses["loss_cls"], expected)
    # the padding token's logit has no effect on the loss or the scores
    other = logits.clone()
    other[:, 3] = -50.0
    with pred.use_text(text):
        again = pred.losses((other, torch.zeros(4, 4)), [_proposals([0, 1, 2, 3])])
        (scores,) = pred.predict_probs((logits, torch.zeros(4, 4)), [_proposals([0, 1, 2, 3])])
        (scores2,) = pred.predict_probs((other, torch.zeros(4, 4)), [_proposals([0, 1, 2, 3])])
    torch.testing.assert_close(again["loss_cls"], expected)
    torch.testing.assert_close(scores, scores2)
    probs = logits[:, real].softmax(dim=1)
    torch.testing.assert_close(scores[:, 0], probs[:, 0] + probs[:, 1])  # mass on the phrase
    torch.testing.assert_close(scores[:, 1], probs[:, 2])
    assert torch.equal(scores[:, 2], torch.zeros(4))  # detectron2's dropped background column
    assert bool((scores[:, :2].sum(dim=1) < 1).all())  # the background keeps the rest


def test_softmax_background_logit_is_the_cosine_to_the_background_embedding(
    build_grounding, clip_encoder
):
    model = build_grounding(clip_encoder, NAMES[:2], cls_loss="softmax")
    pred = model.roi_heads.box_predictor
    text = _text(torch.eye(3)[:2], torch.ones(3, dtype=torch.bool), [0, 1], [5])
    x = torch.randn(5, 64)
    with pred.use_text(text):
        logits, _ = pred(x)
    assert logits.shape == (5, 4)
    region = F.normalize(pred.region_proj(x), dim=-1)
    cos = region @ F.normalize(pred.bg_embed, dim=0)
    torch.testing.assert_close(logits[:, -1], cos / pred.log_scale.exp())
    # the token columns are the focal head's
    focal = build_grounding(clip_encoder, NAMES[:2])
    focal.roi_heads.box_predictor.load_state_dict(
        {k: v for k, v in pred.state_dict().items() if k != "bg_embed"}
    )
    with focal.roi_heads.box_predictor.use_text(text):
        focal_logits, _ = focal.roi_heads.box_predictor(x)
    torch.testing.assert_close(focal_logits, logits[:, :-1])
    assert "bg_embed" not in focal.state_dict()  # focal checkpoints keep their keys


def test_softmax_training_step_reaches_every_side(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:4], aggregation="eot", cls_loss="softmax")
    model.train()
    with EventStorage(0):
        losses = model(_batch(4))
    total = sum(losses.values())
    assert torch.isfinite(total)
    assert float(losses["loss_cls"].detach()) > 0
    total.backward()
    pred = model.roi_heads.box_predictor
    for p in (pred.bg_embed, pred.region_proj.weight, pred.text_proj.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert model.fusion.layers[0].gamma_text.grad.abs().sum() > 0


def test_softmax_refusals(build_grounding, clip_encoder):
    with pytest.raises(ValueError, match="cls_loss must be one of"):
        build_grounding(clip_encoder, NAMES[:2], cls_loss="hinge")
    with pytest.raises(ValueError, match="'max' has no meaning"):
        build_grounding(clip_encoder, NAMES[:2], cls_loss="softmax", aggregation="max")


def test_vild_head_settings_give_vild_text_logits_and_loss(build_grounding, clip_encoder):
    """softmax + fixed temperature 0.01 + no token bias + frozen text projections: the
    region-token logits and the loss are ViLD-text's (TextEmbeddingClassifier with the same
    projection, background and class embeddings = the projected tokens)."""
    from ovdet.modeling.roi_heads.cls_losses import SoftmaxClassification
    from ovdet.modeling.roi_heads.text_classifier import TextEmbeddingClassifier

    model = build_grounding(
        clip_encoder,
        NAMES[:3],
        fusion_layers=0,
        aggregation="eot",
        cls_loss="softmax",
        temperature=0.01,
        learn_temperature=False,
        token_bias=False,
        freeze_text_projection=True,
    )
    pred = model.roi_heads.box_predictor
    names = dict(pred.named_parameters())
    assert "log_scale" not in names and "bias_lang" not in names and "bias0" not in names
    assert "log_scale" in pred.state_dict()  # a buffer: fixed, and saved
    torch.testing.assert_close(pred.log_scale.exp(), torch.tensor(0.01))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = ("text_input", "roi_heads.box_predictor.text_proj")
    assert not any(n.startswith(frozen) for n in trainable)

    # one prompt of 3 class tokens (the eot readout), classes in prompt order 2, 0, 1
    text = _text(torch.eye(3), torch.ones(3, dtype=torch.bool), [1, 2, 0], [5])
    x = torch.randn(5, 64)
    with pred.use_text(text):
        logits, deltas = pred(x)
        loss = pred.losses((logits, deltas), [_proposals([0, 1, 2, 3, 1])])["loss_cls"]
    classes = F.normalize(pred.text_proj(text.tokens[0]), dim=-1)[[1, 2, 0]]  # class order
    vild = TextEmbeddingClassifier(input_shape=64, train_embeddings=classes, temperature=0.01)
    with torch.no_grad():
        vild.linear.load_state_dict(pred.region_proj.state_dict())
        vild.bg_embedding.copy_(pred.bg_embed)
    expected = vild(x)  # (5, C + 1), class order, background last
    torch.testing.assert_close(logits, torch.cat([expected[:, [2, 0, 1]], expected[:, 3:]], 1))
    vild_loss = SoftmaxClassification()(expected, torch.tensor([0, 1, 2, 3, 1]))
    torch.testing.assert_close(loss, vild_loss)


def test_learned_temperature_and_token_bias_are_the_default(build_grounding, clip_encoder):
    pred = build_grounding(clip_encoder, NAMES[:2]).roi_heads.box_predictor
    names = dict(pred.named_parameters())
    assert {"log_scale", "bias_lang", "bias0"} <= set(names)
    torch.testing.assert_close(pred.log_scale.exp(), torch.tensor(0.1))
    torch.testing.assert_close(torch.sigmoid(pred.bias0), torch.tensor(0.01))
