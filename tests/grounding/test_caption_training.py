"""Caption training of Grounding R-CNN: positive maps from character spans (word pieces, a
phrase at the end of the caption, phrases past the token limit), a training step on caption
inputs (no class-name prompt), and configs/ov_shapes/grounding_captions_small.py training
2 iterations on a tiny generated root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes
from ovdet.methods.grounding import positive_map
from ovdet.text.clip_models import create_clip_from_config, tiny_clip_config

NAMES = ["red circle", "blue square", "green triangle", "star", "red hexagon"]
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "ov_shapes"
CAPTION = "a green triangle left of a red hexagon"  # the second phrase ends the caption
SPANS = [[[2, 16]], [[27, 38]]]  # "green triangle", "red hexagon"


def test_positive_map_from_spans_with_word_pieces(build_grounding, bert_encoder):
    model = build_grounding(bert_encoder, NAMES)
    # [CLS] a green tri ##angle left of a red hex ##a ##gon [SEP]
    prompt, _ = model.caption_prompt(CAPTION, SPANS)
    assert prompt.spans == ((2, 5), (8, 12))
    pmap = positive_map(prompt.spans, prompt.num_tokens)
    assert pmap[0].nonzero().flatten().tolist() == [2, 3, 4]
    assert pmap[1].nonzero().flatten().tolist() == [8, 9, 10, 11]  # to the last word piece
    assert prompt.phrases == ("green triangle", "red hexagon")


def test_positive_map_from_spans_with_clip_tokens(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES)
    caption = "Two green triangles to the left of a red hexagon."
    start = caption.index("red hexagon")
    prompt, _ = model.caption_prompt(caption, [[[4, 19]], [[start, start + 11]]])
    tokenizer = clip_encoder._tokenizer
    ids, _ = clip_encoder.caption_offsets(caption)
    assert prompt.num_tokens == len(ids) + 1  # the words and the end-of-text token
    for (s, e), text in zip(prompt.spans, ("green triangles", "red hexagon")):
        assert ids[s:e] == tokenizer.encode(text)
    assert prompt.spans[1][1] == len(ids) - 1  # just before the final "."


def test_phrases_past_the_token_limit_become_ignore_regions(build_grounding, bert_encoder):
    model = build_grounding(bert_encoder, NAMES)
    caption = " ".join(["a red circle"] + ["of"] * 70 + ["a blue square"])
    end = len(caption)
    prompt, gt = model.caption_prompt(
        caption, [[[2, 12]], [[end - 11, end]]], torch.tensor([0, 1, 1, -1])
    )
    assert gt.tolist() == [0, -1, -1, -1]
    assert len(prompt.spans) == 2 and prompt.spans[0] == (2, 4)


def _caption_batch() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    inst = Instances((64, 64))
    inst.gt_boxes = Boxes(torch.tensor([[4.0, 6.0, 40.0, 44.0], [30.0, 20.0, 60.0, 58.0]]))
    inst.gt_classes = torch.tensor([2, 4])
    inst.gt_phrases = torch.tensor([0, 1])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 8:40, 6:38] = masks[1, 22:56, 32:58] = True
    inst.gt_masks = BitMasks(masks)
    empty = Instances((64, 64))
    empty.gt_boxes = Boxes(torch.zeros(0, 4))
    empty.gt_classes = torch.zeros(0, dtype=torch.long)
    empty.gt_phrases = torch.zeros(0, dtype=torch.long)
    empty.gt_masks = BitMasks(torch.zeros(0, 64, 64, dtype=torch.bool))
    return [
        {
            "image": torch.rand(3, 64, 64, generator=g) * 255,
            "instances": inst,
            "caption": CAPTION,
            "tokens_positive": SPANS,
        },
        {
            "image": torch.rand(3, 64, 64, generator=g) * 255,
            "instances": empty,
            "caption": "a star",
            "tokens_positive": [],
        },
    ]


def test_training_step_on_captions(build_grounding, bert_encoder, monkeypatch):
    model = build_grounding(bert_encoder, NAMES).train()

    def no_class_prompt(*args, **kwargs):
        raise AssertionError("caption training must not build a class-name prompt")

    monkeypatch.setattr(model, "_training_prompt", no_class_prompt)
    seen = []
    encode = bert_encoder.encode_caption
    monkeypatch.setattr(bert_encoder, "encode_caption", lambda c, s: seen.append(c) or encode(c, s))
    with EventStorage(0):
        losses = model(_caption_batch())
    assert seen == [CAPTION, "a star"]
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}
    total = sum(losses.values())
    assert torch.isfinite(total) and losses["loss_cls"] > 0
    total.backward()
    assert model.roi_heads.box_predictor.text_proj.weight.grad.abs().sum() > 0

    mixed = _caption_batch()
    del mixed[1]["caption"]
    with pytest.raises(Exception, match="mixes inputs with and without 'caption'"):
        with EventStorage(0):
            model(mixed)


def test_config_trains_two_iterations_on_captions(tmp_path):
    from ovdet.engine.build import apply_overrides
    from ovdet.engine.train import do_train

    root = tmp_path / "data"
    generate_ov_shapes(
        root, num_train=4, num_val=2, seed=1, config=OVShapesConfig(image_size=64), progress=False
    )
    clip_cfg = tiny_clip_config(embed_dim=16, context_length=32)
    teacher = tmp_path / "teacher.pt"
    (tmp_path / "teacher.json").write_text(json.dumps(clip_cfg))
    torch.save(create_clip_from_config(clip_cfg, seed=0).state_dict(), teacher)
    cfg = LazyConfig.load(str(CONFIGS / "grounding_captions_small.py"))
    cfg = apply_overrides(
        cfg,
        [
            f"ov_shapes.root={root}",
            f"ov_shapes.teacher={teacher}",
            "ov_shapes.prefix=ovs_grounding_captions_test",
            "ov_shapes.image_size=64",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
            "train.max_iter=2",
            "train.device=cpu",
            f"train.output_dir={tmp_path / 'out'}",
        ],
    )
    (tmp_path / "out").mkdir()
    assert cfg.dataloader.train.mapper.grounding is True
    assert cfg.dataloader.test.dataset.names.split == "val"  # class-name vocabulary test
    scalars = do_train(cfg)
    losses = {k: v for k, (v, _) in scalars.items() if k.startswith("loss_")}
    assert {"loss_cls", "loss_box_reg", "loss_mask"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()
    ]
    assert max(r["iteration"] for r in rows if "loss_cls" in r) == 1  # iterations 0 and 1
    assert any("bbox/AP50_novel" in r for r in rows)  # evaluated on val, class names
