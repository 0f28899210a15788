"""Token encoders offline: a tiny random BERT (vocabulary written by the test) and a tiny
random open_clip text tower."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ovdet.text import OpenCLIPTextEncoder, PromptTooLongError
from ovdet.utils.errors import InputError


def test_bert_prompt_features_mask_and_limit(bert_encoder):
    prompt = bert_encoder.encode_prompt(["red circle", "star"])
    assert prompt.text == "red circle. star."
    assert prompt.features.shape == (7, 32) and prompt.features.dtype == torch.float32
    assert prompt.mask.all() and prompt.phrases == ("red circle", "star")
    assert bert_encoder.phrase_cost("red triangle") == 4  # red tri ##angle .
    assert bert_encoder.prompt_overhead == 2
    with pytest.raises(PromptTooLongError, match="at most 64"):
        bert_encoder.encode_prompt(["red triangle"] * 20)
    assert bert_encoder.identity == bert_encoder.identity and "max_tokens=64" in (
        bert_encoder.identity
    )


def test_bert_caption_spans_from_offsets(bert_encoder):
    caption = "a red circle left of two blue squares"  # "squares" is unknown: [UNK]
    prompt = bert_encoder.encode_caption(caption, [(2, 12), [(25, 29), (30, 37)]])
    assert prompt.spans == ((2, 4), (7, 9))
    assert prompt.phrases == ("red circle", "blue squares")
    with pytest.raises(InputError, match="past the caption"):
        bert_encoder.encode_caption(caption, [(30, 80)])
    with pytest.raises(InputError, match="non-empty"):
        bert_encoder.encode_caption("", [(0, 1)])


def test_clip_tokens_per_phrase_end_with_the_sentence_embedding(clip_encoder):
    prompt = clip_encoder.encode_prompt(["red circle", "blue", "red circle"])
    assert prompt.spans == ((0, 3), (3, 5), (5, 8))  # words + end token, no start token
    assert prompt.features.shape == (8, 16)
    sentence = OpenCLIPTextEncoder(model=clip_encoder.module, tokenizer=clip_encoder._tokenizer)
    emb = sentence.encode(["red circle", "blue"])
    torch.testing.assert_close(F.normalize(prompt.features[2], dim=0), emb[0])
    torch.testing.assert_close(F.normalize(prompt.features[4], dim=0), emb[1])
    torch.testing.assert_close(prompt.features[:3], prompt.features[5:])  # phrase by phrase
    assert clip_encoder.dim == 16
    with pytest.raises(PromptTooLongError, match="shorten it"):
        clip_encoder.encode_prompt(["red " * 80])
    with pytest.raises(PromptTooLongError, match="at most 64"):
        clip_encoder.encode_prompt(["red circle"] * 30)


def test_clip_phrases_inside_a_template():
    from ovdet.text import OpenCLIPTokenEncoder, tiny_clip_config

    enc = OpenCLIPTokenEncoder.from_config(
        tiny_clip_config(embed_dim=16), seed=0, device="cpu", template="a photo of a {}."
    )
    bare = OpenCLIPTokenEncoder(enc.module, enc._tokenizer)
    prompt = enc.encode_prompt(["red circle", "blue"])
    assert prompt.spans == ((0, 3), (3, 5)) and prompt.features.shape == (5, 16)
    sentence = OpenCLIPTextEncoder(model=enc.module, tokenizer=enc._tokenizer)
    emb = sentence.encode(["a photo of a red circle.", "a photo of a blue."])
    torch.testing.assert_close(F.normalize(prompt.features[2], dim=0), emb[0])
    torch.testing.assert_close(F.normalize(prompt.features[4], dim=0), emb[1])
    assert not torch.allclose(prompt.features[2], bare.encode_prompt(["red circle"]).features[2])
    assert enc.identity != bare.identity
    with pytest.raises(ValueError, match="exactly once"):
        OpenCLIPTokenEncoder(enc.module, enc._tokenizer, template="no slot")
