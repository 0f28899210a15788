from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel, BertTokenizer

from ovdet.text import HFTextEncoder, build_class_embeddings, build_text_encoder

WORDS = "a an the photo of picture cat dog car red small big . ,".split()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 1-layer 32-d random BERT and a word-level tokenizer built from a local vocab file."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab))
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    model = BertModel(config).eval()
    return model, tokenizer


def test_mean_pooling_ignores_padding(tiny_bert):
    model, tokenizer = tiny_bert
    encoder = HFTextEncoder("tiny-bert", model=model, tokenizer=tokenizer, device="cpu")
    assert encoder.dim == 32
    texts = ["a photo of a red cat .", "dog"]
    out = encoder.encode(texts)
    assert out.shape == (2, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    # "dog" alone (no padding) equals "dog" padded inside a batch
    torch.testing.assert_close(encoder.encode(["dog"])[0], out[1])
    with torch.no_grad():
        hidden = model(**tokenizer(["dog"], return_tensors="pt")).last_hidden_state[0]
    torch.testing.assert_close(out[1], F.normalize(hidden.mean(0), dim=0))


def test_cls_pooling_and_identity(tiny_bert):
    model, tokenizer = tiny_bert
    mean = HFTextEncoder("tiny-bert", model=model, tokenizer=tokenizer)
    cls = HFTextEncoder("tiny-bert", pooling="cls", model=model, tokenizer=tokenizer)
    with torch.no_grad():
        hidden = model(**tokenizer(["a big car"], return_tensors="pt")).last_hidden_state
    torch.testing.assert_close(cls.encode(["a big car"])[0], F.normalize(hidden[0, 0], dim=0))
    assert mean.identity != cls.identity
    torch.manual_seed(1)
    other = BertModel(model.config)
    assert HFTextEncoder("tiny-bert", model=other, tokenizer=tokenizer).identity != mean.identity
    embeddings = build_class_embeddings(mean, ["cat", ["dog", "car"]], ["a photo of a {} ."])
    assert embeddings.shape == (2, 32)


def test_load_from_local_folder(tmp_path: Path, tiny_bert):
    model, tokenizer = tiny_bert
    model.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    loaded = build_text_encoder(f"hf:{tmp_path / 'bert'}", device="cpu")
    reference = HFTextEncoder("tiny-bert", model=model, tokenizer=tokenizer)
    texts = ["a small dog", "the cat"]
    torch.testing.assert_close(loaded.encode(texts), reference.encode(texts))


def test_bad_hf_inputs(tmp_path: Path, tiny_bert):
    model, tokenizer = tiny_bert
    with pytest.raises(ValueError, match="pooling must be one of"):
        HFTextEncoder("x", pooling="max", model=model, tokenizer=tokenizer)
    with pytest.raises(FileNotFoundError, match="model directory .*missing not found"):
        HFTextEncoder(str(tmp_path / "missing"))
