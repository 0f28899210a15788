"""The "eot" phrase readout: each class name is ONE token, the end-of-text (sentence) state of
its own templated sequence, for the training positives and the class scores; chunked
inference; frozen text projections; the OV-Shapes config trains on a tiny generated root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from ovdet.methods import get_method
from ovdet.methods.grounding import (
    TextContext,
    aggregate_phrase_scores,
    last_tokens,
    split_into_prompts,
)
from ovdet.text import OpenCLIPTokenEncoder, PromptTooLongError, resolve_vocabulary
from ovdet.utils.errors import InputError

from .test_detector import NAMES, _batch, _images, _strip_masks

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_sentence_tokens_are_each_names_own_eot(clip_encoder, bert_encoder):
    prompt = clip_encoder.encode_sentences(NAMES)
    assert prompt.phrases == tuple(NAMES) and prompt.features.shape == (len(NAMES), 16)
    assert prompt.spans == tuple((i, i + 1) for i in range(len(NAMES)))
    assert bool(prompt.mask.all())
    for i, name in enumerate(NAMES):  # the last token of the name's word prompt: its EOT
        torch.testing.assert_close(
            prompt.features[i], clip_encoder.encode_prompt([name]).features[-1]
        )
    # "red circle" and "red hexagon" share their first word state, not their EOT
    words = clip_encoder.encode_prompt(["red circle", "red hexagon"]).features
    torch.testing.assert_close(words[0], words[3])
    assert not torch.allclose(prompt.features[0], prompt.features[4])
    # every name costs one token: 64 per prompt
    chunks = split_into_prompts(["red circle"] * 130, clip_encoder, sentences=True)
    assert [len(c) for c in chunks] == [64, 64, 2]
    with pytest.raises(PromptTooLongError, match="at most 64"):
        clip_encoder.encode_sentences(["star"] * 65)
    with pytest.raises(PromptTooLongError, match="shorten it"):
        clip_encoder.encode_sentences(["red " * 80])
    with pytest.raises(InputError, match="sentence token"):
        bert_encoder.encode_sentences(NAMES)


def test_eot_positive_map_has_one_positive_per_box_at_its_class_eot(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:4], aggregation="eot").train()
    assert model.readout == "eot" and model.sentence_tokens
    batch = _batch(4)  # classes 0 and 3
    gt = [x["instances"] for x in batch]
    prompt, classes = model._training_prompt(gt)
    assert prompt.num_tokens == len(classes) == 4  # one token per name
    with torch.no_grad():
        features = model.backbone(model.preprocess_image(batch).tensor)
        _, text = model.fuse(features, prompt, classes)
    pred = model.roi_heads.box_predictor
    gt_classes = torch.tensor([0, 3, 4, 3, 0])  # 4: background
    targets, in_prompt = pred.targets(gt_classes, text, prompt.num_tokens)
    assert in_prompt.tolist() == [True, True, False, True, True]
    assert targets.sum(dim=1).tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]  # exactly one positive
    for row, c in zip(targets, gt_classes.tolist()):
        if c == 4:
            continue
        (token,) = row.nonzero().flatten().tolist()
        eot = clip_encoder.encode_prompt([NAMES[c]]).features[-1]  # the name's EOT state
        torch.testing.assert_close(prompt.features[token], eot)
    # a word-token phrase map is read at each phrase's last token (its EOT)
    pmap = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0]])
    assert pred.readout_map(pmap).nonzero().tolist() == [[0, 2], [1, 4]]
    assert last_tokens(pmap).tolist() == [2, 4]
    # a training step: finite losses, gradients to the region and text sides and the fusion
    with EventStorage(0):
        losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for p in (pred.region_proj.weight, pred.text_proj.weight, model.text_input.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert model.fusion.layers[0].gamma_text.grad.abs().sum() > 0  # fusion over class tokens


def test_eot_score_is_its_tokens_sigmoid_probability(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:2], aggregation="eot")
    pred = model.roi_heads.box_predictor
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0, 1.5], [0.0, 1.0, -2.0, 1.0, 4.0]])
    pmap = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0]])
    expected = logits.sigmoid()[:, [2, 4]]
    torch.testing.assert_close(aggregate_phrase_scores(logits.sigmoid(), pmap, "eot"), expected)
    p = Instances((10, 10))
    p.proposal_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5], [1, 1, 6, 6]]))
    for phrase_map, want in ((pmap, expected), (torch.eye(5)[:2], logits.sigmoid()[:, :2])):
        text = TextContext(
            tokens=torch.zeros(1, 5, 24), mask=torch.ones(5, dtype=torch.bool),
            phrase_map=phrase_map, counts=[2],
        )  # fmt: skip
        with pred.use_text(text):
            (scores,) = pred.predict_probs((logits, torch.zeros(2, 4)), [p])
        torch.testing.assert_close(scores[:, :2], want)
        assert torch.equal(scores[:, 2], torch.zeros(2))  # background column
    with pytest.raises(ValueError, match="no token"):
        aggregate_phrase_scores(logits.sigmoid(), torch.zeros(1, 5), "eot")


def test_eot_chunked_equals_unchunked_when_the_vocabulary_fits(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:3], NAMES, fusion_layers=2, aggregation="eot")
    model = _strip_masks(model).eval()
    (prompt,) = model.vocabulary_prompts()
    assert prompt.num_tokens == len(NAMES)  # the fusion attends over the C class tokens
    images = _images()
    with torch.no_grad():
        chunked = model.inference(images, do_postprocess=False)
        pre = model.preprocess_image(images)
        direct = model._detect(
            pre, model.backbone(pre.tensor), clip_encoder.encode_sentences(NAMES)
        )
    for a, b in zip(chunked, direct):
        assert len(a) > 0
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)


def test_eot_large_vocabulary_in_chunks_equals_one_prompt(build_grounding, clip_encoder):
    """Without fusion a class's score depends on its own token only: 200 LVIS names in four
    64-token prompts give the detections of one 200-token prompt."""
    names = resolve_vocabulary("lvis")[:200]
    model = build_grounding(clip_encoder, NAMES[:3], names, fusion_layers=0, aggregation="eot")
    model = _strip_masks(model).eval()
    model.roi_heads.box_predictor.test_topk_per_image = 20
    images = _images(1)
    with torch.no_grad():
        assert [p.num_tokens for p in model.vocabulary_prompts()] == [64, 64, 64, 8]
        many = model.inference(images, do_postprocess=False)[0]
        model.token_encoder = OpenCLIPTokenEncoder(
            clip_encoder.module, clip_encoder._tokenizer, device="cpu", max_tokens=256
        )
        assert len(model.vocabulary_prompts()) == 1
        one = model.inference(images, do_postprocess=False)[0]
    assert len(one) == 20
    order_a, order_b = one.scores.argsort(), many.scores.argsort()
    torch.testing.assert_close(one.scores[order_a], many.scores[order_b])
    torch.testing.assert_close(one.pred_boxes.tensor[order_a], many.pred_boxes.tensor[order_b])
    assert torch.equal(one.pred_classes[order_a], many.pred_classes[order_b])


def test_eot_needs_sentence_tokens_and_refuses_captions(
    build_grounding, bert_encoder, clip_encoder
):
    with pytest.raises(ValueError, match="'eot' readout"):
        build_grounding(bert_encoder, NAMES[:3], aggregation="eot")
    model = build_grounding(clip_encoder, NAMES[:3], aggregation="eot")
    with pytest.raises(InputError, match="'eot' readout"):
        model.ground(_images(1), "a red circle", phrases=["red circle"])


def test_frozen_text_projection_keeps_the_encoders_geometry(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:4], aggregation="eot", freeze_text_projection=True)
    pred = model.roi_heads.box_predictor
    frozen = {id(p) for p in (*model.text_input.parameters(), *pred.text_proj.parameters())}
    assert not any(p.requires_grad for p in model.parameters() if id(p) in frozen)
    w = pred.text_proj.weight  # (16, 24): orthonormal rows, no bias
    torch.testing.assert_close(w @ w.T, torch.eye(16))
    assert torch.equal(pred.text_proj.bias, torch.zeros(16))
    before = {k: v.clone() for k, v in model.state_dict().items() if "text_" in k}
    model.train()
    with EventStorage(0):
        total = sum(model(_batch(4)).values())
    total.backward()
    assert all(p.grad is None for p in model.parameters() if id(p) in frozen)
    assert pred.region_proj.weight.grad.abs().sum() > 0
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)
    default = build_grounding(clip_encoder, NAMES[:4])
    assert default.text_input.weight.requires_grad and default.readout == "mean"


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory) -> Path:
    """A random tiny CLIP saved as the benchmark saves its teacher (teacher.pt + .json)."""
    from ovdet.text.clip_models import create_clip_from_config, tiny_clip_config

    folder = tmp_path_factory.mktemp("teacher")
    cfg = tiny_clip_config(embed_dim=16)
    model = create_clip_from_config(cfg, seed=0)
    torch.save(model.state_dict(), folder / "teacher.pt")
    (folder / "teacher.json").write_text(json.dumps(cfg))
    return folder / "teacher.pt"


@pytest.mark.parametrize(
    ("method", "cls_loss"),
    [
        ("grounding_eot", "focal"),
        ("grounding_eot_softmax", "softmax"),
        ("grounding_eot_vildhead", "softmax"),
        ("grounding_eot_vildhead_nofusion", "softmax"),
    ],
)
def test_ov_shapes_eot_config_trains_two_iterations(tiny_teacher, tmp_path, method, cls_loss):
    from ovdet.data.synthetic import generate_ov_shapes
    from ovdet.engine.build import load_config
    from ovdet.engine.train import train_and_evaluate

    config = get_method(method).configs["ov_shapes"]
    assert config == f"ov_shapes/{method}_small.py"
    root = tmp_path / "data"
    generate_ov_shapes(root, num_train=4, num_val=2, seed=5, progress=False)
    out = tmp_path / "out"
    cfg = load_config(
        CONFIGS / config,
        [
            f"ov_shapes.root={root}",
            f"ov_shapes.teacher={tiny_teacher}",
            "ov_shapes.prefix=grounding_eot_cfg",
            "ov_shapes.image_size=64",
            "train.max_iter=2",
            f"train.output_dir={out}",
            "train.checkpointer.period=10",
            "train.log_period=1",
            "train.device=cpu",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ],
    )
    assert cfg.model.roi_heads.box_predictor.aggregation == "eot"
    assert cfg.model.roi_heads.box_predictor.cls_loss == cls_loss
    vild_head = "vildhead" in method
    assert cfg.model.roi_heads.box_predictor.learn_temperature is not vild_head
    assert cfg.model.roi_heads.box_predictor.token_bias is not vild_head
    assert cfg.model.fusion_layers == (0 if method.endswith("nofusion") else 2)
    result = train_and_evaluate(cfg)
    assert result["iterations"] == 2
    losses = {k: v for k, v in result["scalars"].items() if k.startswith("loss_")}
    assert {"loss_cls", "loss_box_reg", "loss_mask"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert "AP50_novel" in result["test"]["bbox"]
    assert (out / "model_final.pth").is_file()
