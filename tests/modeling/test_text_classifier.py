"""TextEmbeddingClassifier: cosine/tau logits, vocabulary switching, checkpoint portability."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import ShapeSpec

from ovdet.modeling import TextEmbeddingClassifier


def _classifier(c_train=3, d=4, in_ch=5, **kw) -> TextEmbeddingClassifier:
    return TextEmbeddingClassifier(
        input_shape=ShapeSpec(channels=in_ch), train_embeddings=torch.randn(c_train, d), **kw
    )


def test_logits_equal_hand_computed_cosine_over_tau():
    t = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])  # normalised by the classifier
    clf = TextEmbeddingClassifier(input_shape=2, train_embeddings=t, temperature=0.5)
    with torch.no_grad():
        clf.linear.weight.copy_(torch.eye(2))
        clf.linear.bias.zero_()
        clf.bg_embedding.copy_(torch.tensor([0.0, -5.0]))
    x = torch.tensor([[3.0, 4.0], [-1.0, 0.0]])
    logits = clf(x)
    # region 0: e = (0.6, 0.8); region 1: e = (-1, 0); classes (1,0), (0,1), (0.6,0.8); bg (0,-1)
    expected = torch.tensor([[0.6, 0.8, 0.36 + 0.64, -0.8], [-1.0, 0.0, -0.6, 0.0]]) / 0.5
    assert logits.shape == (2, 4)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(clf.embed(x).norm(dim=1), torch.ones(2))


def test_default_temperature_and_embed_dim_inferred():
    clf = _classifier()
    assert clf.temperature == 0.01 and clf.embed_dim == 4
    with pytest.raises(ValueError, match="expected 8.*got 4"):
        _classifier(embed_dim=8)


def test_train_and_test_vocabularies_follow_mode():
    clf = _classifier(c_train=3, test_embeddings=torch.randn(6, 4))
    x = torch.randn(7, 5)
    clf.train()
    assert clf(x).shape == (7, 4) and clf.num_classes == 3
    clf.eval()
    assert clf(x).shape == (7, 7) and clf.num_classes == 6
    assert clf.num_train_classes == 3


@pytest.mark.parametrize("num_classes", [3, 80, 1203, 10000])
def test_set_vocabulary_any_size(num_classes):
    clf = _classifier().eval()
    emb = torch.randn(num_classes, 4) * 7
    clf.set_vocabulary(emb)
    vocab = clf.get_vocabulary()
    torch.testing.assert_close(vocab.norm(dim=1), torch.ones(num_classes))
    torch.testing.assert_close(vocab, F.normalize(emb, dim=1))
    out = clf(torch.randn(2, 5))
    assert out.shape == (2, num_classes + 1)
    clf.train()
    assert clf(torch.randn(2, 5)).shape == (2, 4)  # training vocabulary untouched


def test_set_vocabulary_rejects_bad_input():
    clf = _classifier()
    with pytest.raises(ValueError, match="expected 4.*got 3"):
        clf.set_vocabulary(torch.randn(5, 3))
    with pytest.raises(ValueError, match="empty"):
        clf.set_vocabulary(torch.randn(0, 4))
    with pytest.raises(ValueError, match="shape"):
        clf.set_vocabulary(torch.randn(4))


def test_state_dict_loads_across_vocabulary_sizes():
    a = _classifier(c_train=5)
    b = _classifier(c_train=48, test_embeddings=torch.randn(1203, 4))
    sd = a.state_dict()
    assert set(sd) == {"linear.weight", "linear.bias", "bg_embedding"}
    b.load_state_dict(sd, strict=True)
    assert b.num_train_classes == 48 and b.get_vocabulary().shape == (1203, 4)
    vocab = torch.randn(9, 4)
    a.eval().set_vocabulary(vocab)
    b.eval().set_vocabulary(vocab)
    x = torch.randn(3, 5)
    torch.testing.assert_close(a(x), b(x))


def test_real_clip_text_embeddings(test_data):
    emb = np.load(test_data / "clip_text_embeddings" / "coco_clip_a+cname.npy")
    emb = torch.from_numpy(emb)  # fp16, unnormalised, (80, 512)
    clf = TextEmbeddingClassifier(input_shape=8, train_embeddings=emb[:48]).eval()
    clf.set_vocabulary(emb)
    assert clf.get_vocabulary().dtype == torch.float32
    torch.testing.assert_close(clf.get_vocabulary().norm(dim=1), torch.ones(80))
    assert clf(torch.randn(2, 8)).shape == (2, 81)
