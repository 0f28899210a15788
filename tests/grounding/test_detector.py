"""GroundingRCNN: training step, chunked inference (== unchunked when the vocabulary fits one
prompt; == one prompt without fusion for phrase-wise tokens), 1203 classes on a tiny model,
phrase grounding, bad input."""

from __future__ import annotations

import pytest
import torch
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from ovdet.methods.grounding import GroundingRCNN, merge_detections
from ovdet.text import PromptTooLongError, resolve_vocabulary
from ovdet.utils.errors import InputError

NAMES = ["red circle", "blue square", "green triangle", "star", "red hexagon"]


def _batch(num_classes: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    inst = Instances((64, 64))
    inst.gt_boxes = Boxes(torch.tensor([[4.0, 6.0, 40.0, 44.0], [30.0, 20.0, 60.0, 58.0]]))
    inst.gt_classes = torch.tensor([0, num_classes - 1])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 8:40, 6:38] = masks[1, 22:56, 32:58] = True
    inst.gt_masks = BitMasks(masks)
    empty = Instances((64, 64))
    empty.gt_boxes = Boxes(torch.zeros(0, 4))
    empty.gt_classes = torch.zeros(0, dtype=torch.long)
    empty.gt_masks = BitMasks(torch.zeros(0, 64, 64, dtype=torch.bool))
    return [
        {"image": torch.rand(3, 64, 64, generator=g) * 255, "instances": inst},
        {"image": torch.rand(3, 64, 64, generator=g) * 255, "instances": empty},
    ]


def _images(n: int = 2) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    return [
        {"image": torch.rand(3, 64, 80, generator=g) * 255, "height": 64, "width": 80}
        for _ in range(n)
    ]


def _strip_masks(model):
    model.roi_heads.mask_on = False
    return model


@pytest.mark.parametrize("encoder", ["bert_encoder", "clip_encoder"])
def test_training_step_losses_and_gradients(encoder, request, build_grounding):
    enc = request.getfixturevalue(encoder)
    model = build_grounding(enc, NAMES[:4], fusion_layers=1).train()
    with EventStorage(0):
        losses = model(_batch(4))
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    fusion = model.fusion.layers[0]
    assert fusion.gamma_image.grad.abs().sum() > 0 and fusion.gamma_text.grad.abs().sum() > 0
    pred = model.roi_heads.box_predictor
    for p in (pred.region_proj.weight, pred.text_proj.weight, pred.bias0, model.text_input.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_training_prompt_keeps_positives_and_caps_phrases(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES, max_train_phrases=3).train()
    for _ in range(5):
        inst = _batch(5)[0]["instances"]  # classes 0 and 4
        prompt, classes = model._training_prompt([inst])
        assert len(classes) == 3 and {0, 4} <= set(classes)
        assert list(prompt.phrases) == [NAMES[c] for c in classes]


def test_focal_loss_by_hand_on_one_region(build_grounding, clip_encoder):
    from fvcore.nn import sigmoid_focal_loss

    from ovdet.methods.grounding import TextContext

    model = build_grounding(clip_encoder, NAMES[:2])
    pred = model.roi_heads.box_predictor
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0], [0.0, 1.0, 1.0, 1.0]])
    pmap = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    text = TextContext(
        tokens=torch.zeros(1, 4, 24),
        mask=torch.tensor([True, True, True, False]),
        phrase_map=pmap,
        class_rows=torch.tensor([1, 0]),  # class 0 is the prompt's 2nd phrase
        counts=[2],
    )
    p = Instances((10, 10))
    p.proposal_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5], [1, 1, 6, 6]]))
    p.gt_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5], [1, 1, 6, 6]]))
    p.gt_classes = torch.tensor([0, 2])  # class 0, background
    with pred.use_text(text):
        loss = pred.losses((logits, torch.zeros(2, 4)), [p])["loss_cls"]
    target = torch.tensor([[0.0, 0, 1], [0, 0, 0]])
    expected = sigmoid_focal_loss(logits[:, :3], target, 0.25, 2.0, "sum") / 1
    torch.testing.assert_close(loss, expected)


def test_chunked_equals_unchunked_when_the_vocabulary_fits(build_grounding, bert_encoder):
    model = _strip_masks(build_grounding(bert_encoder, NAMES[:3], NAMES, fusion_layers=2)).eval()
    prompts = model.vocabulary_prompts()
    assert len(prompts) == 1  # fits one prompt
    images = _images()
    with torch.no_grad():
        chunked = model.inference(images, do_postprocess=False)
        pre = model.preprocess_image(images)
        direct = model._detect(pre, model.backbone(pre.tensor), bert_encoder.encode_prompt(NAMES))
    for a, b in zip(chunked, direct):
        assert len(a) > 0
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)


def test_without_fusion_many_chunks_equal_one_prompt(build_grounding, clip_encoder):
    """Phrase-wise tokens and K=0: a phrase's scores do not depend on the other phrases, so
    any chunking gives the one-prompt detections (per-class NMS, then the global top-k)."""
    model = _strip_masks(build_grounding(clip_encoder, NAMES[:3], NAMES, fusion_layers=0)).eval()
    model.roi_heads.box_predictor.test_topk_per_image = 20
    images = _images(1)
    with torch.no_grad():
        one = model.inference(images, do_postprocess=False)[0]
        model.max_test_phrases = 2
        assert len(model.vocabulary_prompts()) == 3
        many = model.inference(images, do_postprocess=False)[0]
    assert len(one) == 20
    order_a, order_b = one.scores.argsort(), many.scores.argsort()
    torch.testing.assert_close(one.scores[order_a], many.scores[order_b])
    torch.testing.assert_close(one.pred_boxes.tensor[order_a], many.pred_boxes.tensor[order_b])
    assert torch.equal(one.pred_classes[order_a], many.pred_classes[order_b])


def test_lvis_vocabulary_runs_in_chunks_with_one_backbone_pass(build_grounding, clip_encoder):
    lvis = resolve_vocabulary("lvis")
    model = build_grounding(clip_encoder, NAMES[:3], fusion_layers=1).eval()
    model.roi_heads.box_predictor.test_topk_per_image = 50
    model.set_vocabulary(lvis)
    assert len(model.vocabulary) == 1203
    calls = []
    model.backbone.register_forward_hook(lambda *a: calls.append("backbone"))
    model.fusion.register_forward_hook(lambda *a: calls.append("fusion"))
    with torch.no_grad():
        (out,) = model(_images(1))
    chunks = model.vocabulary_prompts()
    assert len(chunks) > 10 and sum(len(c.phrases) for c in chunks) == 1203
    groups = -(-len(chunks) // model.chunk_batch)  # chunks run chunk_batch at a time
    assert calls.count("backbone") == 1 and calls.count("fusion") == groups
    inst = out["instances"]
    assert inst.image_size == (64, 80) and 0 < len(inst) <= 50
    assert inst.has("pred_masks")
    assert int(inst.pred_classes.max()) < 1203
    assert model.vocabulary_prompts() is chunks  # cached per vocabulary


def test_merge_detections_keeps_topk_after_per_class_nms():
    a, b = Instances((10, 10)), Instances((10, 10))
    a.pred_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5], [0, 0, 5, 5.1]]))
    a.scores, a.pred_classes = torch.tensor([0.9, 0.8]), torch.tensor([0, 0])
    b.pred_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5], [6, 6, 9, 9]]))
    b.scores, b.pred_classes = torch.tensor([0.7, 0.95]), torch.tensor([3, 4])
    out = merge_detections([a, b], nms_thresh=0.5, topk=2)
    assert out.scores.tolist() == pytest.approx([0.95, 0.9])
    assert out.pred_classes.tolist() == [4, 0]
    assert merge_detections([a], 0.5, 1) is a


def test_phrase_grounding_returns_boxes_per_phrase(build_grounding, bert_encoder):
    model = _strip_masks(build_grounding(bert_encoder, NAMES[:3]))
    caption = "a red circle left of two blue squares"
    (out,) = model.ground(_images(1), caption, phrases=["red circle", "blue squares"])
    inst = out["instances"]
    assert len(inst) > 0 and set(inst.pred_classes.tolist()) <= {0, 1}
    (by_span,) = model.ground(_images(1), caption, spans=[(2, 12), (25, 37)])
    assert torch.equal(by_span["instances"].scores, inst.scores)
    with pytest.raises(InputError, match="not in the caption"):
        model.ground(_images(1), caption, phrases=["green star"])


def test_bad_input_names_the_culprit(build_grounding, bert_encoder, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:3])
    with pytest.raises(ValueError, match="empty"):
        model.set_vocabulary([])
    with pytest.raises(TypeError, match="class names"):
        model.set_vocabulary(torch.zeros(3, 16))
    model.set_vocabulary(["star", "red " * 80])
    with pytest.raises(PromptTooLongError, match="index 1"):
        model.vocabulary_prompts()
    with pytest.raises(ValueError, match="3 training class names but the ROI heads train 2"):
        from detectron2.config import instantiate

        from .conftest import tiny_grounding_config

        cfg = tiny_grounding_config(clip_encoder, NAMES[:3])
        cfg.model.roi_heads.box_predictor.num_classes = 2
        instantiate(cfg.model)
    with pytest.raises(TypeError, match="TokenEncoder"):
        GroundingRCNN(
            token_encoder=object(),
            train_vocabulary=NAMES[:3],
            backbone=model.backbone,
            proposal_generator=model.proposal_generator,
            roi_heads=model.roi_heads,
            pixel_mean=[0, 0, 0],
            pixel_std=[1, 1, 1],
        )


def test_checkpoint_of_another_text_encoder_is_refused(
    build_grounding, bert_encoder, clip_encoder, tmp_path
):
    from ovdet.engine.checkpoint import CheckpointMismatchError, load_detectron2_weights

    trained = build_grounding(clip_encoder, NAMES[:3])  # 16-d CLIP tokens
    path = tmp_path / "model.pth"
    torch.save({"model": trained.state_dict()}, path)
    other = build_grounding(bert_encoder, NAMES[:3])  # 32-d BERT tokens
    with pytest.raises(CheckpointMismatchError, match="text_input"):
        load_detectron2_weights(other, path)
    same = build_grounding(clip_encoder, NAMES[:3], seed=1)
    load_detectron2_weights(same, path)
    assert torch.equal(same.text_input.weight, trained.text_input.weight)
