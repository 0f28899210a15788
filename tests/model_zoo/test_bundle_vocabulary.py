"""A bundle's text tower keeps only the token rows of its training texts (the others load as
zeros), so its encoder refuses words it does not know instead of encoding them from zeros:
through ``OVPredictor.predict(vocabulary=...)``, ``set_vocabulary`` and ``ovdet detect``, naming
the words, leaving the previous vocabulary in place; known words encode exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet.cli import main as cli
from ovdet.demo import make_images
from ovdet.predictor import OVPredictor
from ovdet.text import (
    KnownTokens,
    OpenCLIPTextEncoder,
    OpenCLIPTokenEncoder,
    UnknownTokensError,
    build_class_embeddings,
    create_clip_tokenizer,
    tiny_clip_config,
)
from ovdet.utils.errors import InputError

NAME = "ov-shapes-vild-text"
NAMES = ["red circle", "blue star", "green hexagon"]
GIRAFFE = rf"model bundle {NAME} cannot encode 'giraffe': \['giraffe</w>'\]"


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    make_images(root, num_images=1, seed=11)
    return next((root / "images" / "val").iterdir())


@pytest.fixture(scope="module")
def predictor() -> OVPredictor:
    return OVPredictor.from_pretrained(NAME, device="cpu", score_thresh=0.0)


def test_shipped_class_names_encode_as_before(predictor, image):
    encoder = predictor.model.text_encoder
    assert encoder.known_tokens is not None and 0 < len(encoder.known_tokens.ids) < 1000
    # the same tower without the kept ids: the encoder a bundle had before, which checks nothing
    unchecked = OpenCLIPTextEncoder(model=encoder.module, tokenizer=encoder.tokenizer)
    assert unchecked.known_tokens is None
    templates = list(predictor.model.templates)
    reference = build_class_embeddings(unchecked, NAMES, templates)
    assert torch.equal(build_class_embeddings(encoder, NAMES, templates), reference)
    out = predictor.predict(image, vocabulary=NAMES)
    assert predictor.vocabulary == NAMES and len(out["scores"]) > 0
    predictor.set_vocabulary(reference, names=NAMES)
    before = predictor.predict(image)
    np.testing.assert_array_equal(out["scores"], before["scores"])
    np.testing.assert_array_equal(out["boxes"], before["boxes"])
    assert out["class_names"] == before["class_names"]


def test_unknown_word_refused_by_predict(predictor, image):
    predictor.set_vocabulary(NAMES)
    before = predictor.predict(image)
    cached = list(predictor.model._vocabulary_cache)
    with pytest.raises(UnknownTokensError, match=GIRAFFE) as info:
        predictor.predict(image, vocabulary=["red circle", "giraffe"])
    message = str(info.value)
    assert "'red circle'" not in message  # known words are not blamed
    assert "training texts" in message and "ovdet models" in message
    assert "full text encoder" in message
    # nothing changed: the vocabulary, its cache, the detections
    assert predictor.vocabulary == NAMES
    assert list(predictor.model._vocabulary_cache) == cached
    after = predictor.predict(image)
    np.testing.assert_array_equal(after["scores"], before["scores"])
    assert after["class_names"] == before["class_names"]


def test_unknown_words_refused_by_set_vocabulary(predictor):
    predictor.set_vocabulary(NAMES)
    both = r"'giraffe': \['giraffe</w>'\]; 'zebra crossing': \['zebra</w>', 'crossing</w>'\]"
    with pytest.raises(InputError, match=both):
        predictor.set_vocabulary(["giraffe", "red circle", "zebra crossing"])
    with pytest.raises(InputError, match=GIRAFFE):
        predictor.model.set_vocabulary(["giraffe"])  # the model itself
    with pytest.raises(InputError, match=r"'a giraffe\.': \['giraffe</w>'\]"):
        predictor.model.text_encoder.encode(["a giraffe."])  # and its encoder
    assert predictor.vocabulary == NAMES


def test_detect_refuses_an_unknown_word(image, tmp_path, capsys):
    argv = ["detect", "--model", NAME, "--vocab", "red circle,giraffe", "--input", str(image)]
    assert cli([*argv, "--output", str(tmp_path / "o"), "--no-vis", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "cannot encode 'giraffe'" in err and "ovdet models" in err


def test_token_encoder_with_known_ids():
    """The grounding bundles' OpenCLIPTokenEncoder: kept ids refuse prompts, sentence tokens
    and captions that need other tokens; known phrases encode as without the check."""
    cfg = tiny_clip_config(embed_dim=16)
    full = OpenCLIPTokenEncoder.from_config(cfg, seed=0, device="cpu", template="a {}.")
    tokenizer = create_clip_tokenizer(cfg)
    known = KnownTokens(tokenizer(["a red circle.", "a blue star."]).unique(), source="tower T")
    pruned = OpenCLIPTokenEncoder(
        full.module, tokenizer, device="cpu", template="a {}.", known_tokens=known
    )
    assert full.known_tokens is None and pruned.known_tokens is known
    assert pruned.dim == full.dim  # the width probe reads "x", which the table lacks
    giraffe = r"^tower T cannot encode 'giraffe': \['giraffe</w>'\]: "
    for method in ("encode_prompt", "encode_sentences"):
        ours, theirs = getattr(pruned, method), getattr(full, method)
        a, b = ours(["red circle", "blue star"]), theirs(["red circle", "blue star"])
        assert torch.equal(a.features, b.features) and a.spans == b.spans
        with pytest.raises(UnknownTokensError, match=giraffe):
            ours(["red circle", "giraffe"])
        theirs(["giraffe"])  # a full tower reads any word
    caption = "a red circle."
    a, b = pruned.encode_caption(caption, [(2, 12)]), full.encode_caption(caption, [(2, 12)])
    assert torch.equal(a.features, b.features)
    with pytest.raises(UnknownTokensError, match=r"'a giraffe\.': \['giraffe</w>'\]"):
        pruned.encode_caption("a giraffe.", [(2, 9)])
