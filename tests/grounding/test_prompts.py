"""Positive maps from spans (multi-piece words, repeated words, a phrase at the end), phrase
aggregation and vocabulary chunking."""

from __future__ import annotations

import pytest
import torch

from ovdet.methods.grounding import aggregate_phrase_scores, positive_map, split_into_prompts
from ovdet.text import PromptTooLongError, build_prompt, char_spans_to_token_spans
from ovdet.utils.errors import InputError


def test_build_prompt_spans():
    text, spans = build_prompt(["red circle", "star", "red circle x"])
    assert text == "red circle. star. red circle x."
    assert [text[s:e] for s, e in spans] == ["red circle", "star", "red circle x"]
    with pytest.raises(InputError, match="index 1"):
        build_prompt(["a", " "])


def test_char_to_token_spans_by_hand():
    # "red triangle. star." as [CLS] red tri ##angle . star . [SEP]
    offsets = [(0, 0), (0, 3), (4, 7), (7, 12), (12, 13), (14, 18), (18, 19), (0, 0)]
    assert char_spans_to_token_spans(offsets, [(0, 12), (14, 18)]) == [(1, 4), (5, 6)]
    assert char_spans_to_token_spans(offsets, [[(0, 3), (14, 18)]]) == [(1, 6)]  # split phrase
    assert char_spans_to_token_spans(offsets, [(5, 9)]) == [(2, 4)]  # inside a word: its pieces
    with pytest.raises(PromptTooLongError, match="phrase 0"):
        char_spans_to_token_spans(offsets[:3], [(14, 18)])  # truncated before it
    with pytest.raises(InputError, match="empty or reversed"):
        char_spans_to_token_spans(offsets, [(4, 4)])


def test_positive_map_from_the_bert_tokenizer(bert_encoder):
    phrases = ["red triangle", "blue hexagon", "red triangle", "star"]
    prompt = bert_encoder.encode_prompt(phrases)
    tokens = bert_encoder.tokenizer.convert_ids_to_tokens(
        bert_encoder.tokenizer(prompt.text)["input_ids"]
    )
    # [CLS] red tri ##angle . blue hex ##a ##gon . red tri ##angle . star . [SEP]
    assert prompt.spans == ((1, 4), (5, 9), (10, 13), (14, 15))
    assert [tokens[s:e] for s, e in prompt.spans][1] == ["blue", "hex", "##a", "##gon"]
    pmap = positive_map(prompt.spans, prompt.num_tokens)
    assert pmap.shape == (4, 17)
    assert pmap[0].nonzero().flatten().tolist() == [1, 2, 3]
    # the repeated phrase gets its own occurrence, not the first one
    assert pmap[2].nonzero().flatten().tolist() == [10, 11, 12]
    # the phrase at the end of the prompt: not the final "." nor [SEP]
    assert pmap[3].nonzero().flatten().tolist() == [14]
    norm = positive_map(prompt.spans, prompt.num_tokens, normalize=True)
    torch.testing.assert_close(norm.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="outside"):
        positive_map([(3, 20)], 17)


def test_phrase_aggregation_mean_and_max():
    probs = torch.tensor([[0.1, 0.5, 0.9, 0.2], [0.4, 0.4, 0.0, 1.0]])
    pmap = positive_map([(0, 3), (3, 4)], 4)
    torch.testing.assert_close(
        aggregate_phrase_scores(probs, pmap, "mean"), torch.tensor([[0.5, 0.2], [0.8 / 3, 1.0]])
    )
    torch.testing.assert_close(
        aggregate_phrase_scores(probs, pmap, "max"), torch.tensor([[0.9, 0.2], [0.4, 1.0]])
    )
    with pytest.raises(ValueError, match="mean"):
        aggregate_phrase_scores(probs, pmap, "sum")


def test_split_into_prompts_fits_the_budget(bert_encoder):
    names = ["red circle", "blue hexagon", "green triangle", "star"] * 10
    names = [f"{n} {'a ' * (i % 3)}".strip() for i, n in enumerate(names)]
    chunks = split_into_prompts(names, bert_encoder)
    assert [n for c in chunks for n in c] == names
    assert len(chunks) > 1
    for chunk in chunks:
        prompt = bert_encoder.encode_prompt(chunk)
        assert int(prompt.mask.sum()) <= bert_encoder.max_tokens
    assert all(len(c) <= 3 for c in split_into_prompts(names, bert_encoder, max_phrases=3))
    assert split_into_prompts(names[:2], bert_encoder) == [names[:2]]
    with pytest.raises(PromptTooLongError, match="index 1"):
        split_into_prompts(["star", "red " * 70], bert_encoder)
    with pytest.raises(InputError, match="no phrases"):
        split_into_prompts([], bert_encoder)
