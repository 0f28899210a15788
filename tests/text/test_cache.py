from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovdet.text import (
    TEMPLATE_SET_NAMES,
    VocabularyCache,
    build_class_embeddings,
    default_cache_root,
    get_templates,
)

from .conftest import CountingEncoder

TEMPLATES = ["a {}.", "a photo of a {}."]


def test_second_get_does_not_encode(tmp_path: Path, counting_encoder):
    cache = VocabularyCache(tmp_path / "cache")
    first = cache.get(counting_encoder, ["cat", ["dog", "puppy"]], TEMPLATES)
    assert counting_encoder.encode_calls == 1
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    assert not list((tmp_path / "cache").glob("*.tmp"))
    # a plain name and a one-element synonym list are the same class
    second = cache.get(counting_encoder, [["cat"], ["dog", "puppy"]], TEMPLATES)
    assert counting_encoder.encode_calls == 1
    torch.testing.assert_close(first, second)
    expected = build_class_embeddings(CountingEncoder(), ["cat", ["dog", "puppy"]], TEMPLATES)
    torch.testing.assert_close(first, expected)
    # a fresh cache object on the same root (another process) also hits
    VocabularyCache(tmp_path / "cache").get(counting_encoder, ["cat", ["dog", "puppy"]], TEMPLATES)
    assert counting_encoder.encode_calls == 1


def test_key_depends_on_encoder_templates_classes(tmp_path: Path):
    cache = VocabularyCache(tmp_path)
    enc, other = CountingEncoder(name="a"), CountingEncoder(name="b")
    base = cache.key(enc, ["cat", "dog"], TEMPLATES)
    assert cache.key(other, ["cat", "dog"], TEMPLATES) != base
    assert cache.key(enc, ["dog", "cat"], TEMPLATES) != base
    assert cache.key(enc, ["cat", "dog"], TEMPLATES[:1]) != base
    assert cache.key(enc, ["cat", "dog"], TEMPLATES) == base
    cache.get(enc, ["cat", "dog"], TEMPLATES)
    cache.get(enc, ["cat", "dog"], TEMPLATES[:1])
    cache.get(other, ["cat", "dog"], TEMPLATES)
    assert enc.encode_calls == 2 and other.encode_calls == 1
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_default_root(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("OVDET_CACHE", str(tmp_path / "c"))
    assert default_cache_root() == tmp_path / "c"
    assert VocabularyCache().root == tmp_path / "c"
    monkeypatch.delenv("OVDET_CACHE")
    assert default_cache_root() == Path.home() / ".cache" / "ovdet" / "text"


def test_foreign_entry_is_an_error(tmp_path: Path, counting_encoder):
    cache = VocabularyCache(tmp_path)
    path = cache.path(counting_encoder, ["cat"], TEMPLATES)
    torch.save({"embeddings": torch.zeros(1, 8), "classes": [["dog"]]}, path)
    with pytest.raises(ValueError, match="does not match its key.*delete it"):
        cache.get(counting_encoder, ["cat"], TEMPLATES)


def test_template_sets_and_synonym_lists_never_share_an_entry(tmp_path: Path):
    cache = VocabularyCache(tmp_path)
    enc = CountingEncoder()
    classes = ["cat", "dog"]
    keys = {name: cache.key(enc, classes, get_templates(name)) for name in TEMPLATE_SET_NAMES}
    assert len(set(keys.values())) == len(TEMPLATE_SET_NAMES)
    synonym_lists = [
        ["cat", "dog"],
        ["cat", ["dog", "puppy"]],
        ["cat", ["puppy", "dog"]],  # same classes, other synonym order: another entry
        ["cat", ["dog", "puppy", "hound"]],
        [["cat", "dog"]],  # one class with two synonyms is not two classes
    ]
    syn_keys = [cache.key(enc, c, ["a {}."]) for c in synonym_lists]
    assert len(set(syn_keys)) == len(synonym_lists)
    # entries hold what they were built from, and differ where the prompts differ
    vild = cache.get(enc, classes, get_templates("vild"))
    rkd = cache.get(enc, classes, get_templates("rkd"))
    detic = cache.get(enc, classes, get_templates("detic"))
    assert not torch.allclose(vild, rkd) and not torch.allclose(rkd, detic)
    with_synonyms = cache.get(enc, ["cat", ["dog", "puppy"]], get_templates("rkd"))
    assert not torch.allclose(with_synonyms, rkd)
    assert enc.encode_calls == 4 and len(list(tmp_path.glob("*.pt"))) == 4
    entry = torch.load(cache.path(enc, classes, get_templates("vild")), weights_only=True)
    assert entry["templates"] == get_templates("vild")
    torch.testing.assert_close(
        vild, build_class_embeddings(CountingEncoder(), classes, get_templates("vild"))
    )


def test_model_vocabulary_cache_keys_on_templates(tiny_fpn_config, build_model, fake_encoder):
    """OVRCNN's in-memory cache: another template set is another entry, never a stale one."""
    cfg = tiny_fpn_config(torch.randn(5, fake_encoder.dim))
    cfg.model.text_encoder = fake_encoder
    model = build_model(cfg)
    names = ["cat", "dog"]
    model.set_vocabulary(names)
    single = model.roi_heads.get_vocabulary().clone()
    calls = fake_encoder.calls
    model.templates = tuple(get_templates("vild"))
    model.set_vocabulary(names)
    assert fake_encoder.calls == calls + 1
    vild = model.roi_heads.get_vocabulary().clone()
    assert not torch.allclose(single, vild)
    torch.testing.assert_close(
        vild, build_class_embeddings(fake_encoder, names, get_templates("vild"))
    )
    calls = fake_encoder.calls
    model.templates = get_templates("rkd")  # a list works too
    model.set_vocabulary(names)
    assert fake_encoder.calls == calls + 1
    model.templates = ("a {}.",)
    model.set_vocabulary(names)  # back to the first set: a hit, the first embeddings
    assert fake_encoder.calls == calls + 1
    torch.testing.assert_close(model.roi_heads.get_vocabulary(), single)
