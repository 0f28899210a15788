from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovdet.text import VocabularyCache, build_class_embeddings, default_cache_root

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
