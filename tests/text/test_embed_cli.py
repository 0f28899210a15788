from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ovdet.cli import main as ovdet_main
from ovdet.text import (
    OpenCLIPTextEncoder,
    build_class_embeddings,
    get_templates,
    load_class_embeddings,
    lvis_synonym_lists,
)


@pytest.fixture
def config_json(tmp_path: Path, clip_cfg) -> Path:
    path = tmp_path / "tiny_clip.json"
    path.write_text(json.dumps(clip_cfg))
    return path


def test_embed_text_random_config_model(tmp_path: Path, config_json: Path, tiny_clip, capsys):
    out = tmp_path / "out" / "vocab.npy"
    argv = ["embed-text", "--encoder", f"open_clip-config:{config_json}", "--vocab", "cat, dog,car"]
    argv += ["--templates", "photo", "--out", str(out), "--seed", "0", "--device", "cpu"]
    assert ovdet_main(argv) == 0
    captured = capsys.readouterr()
    assert "randomly initialised" in captured.err
    assert "wrote 3 x 32 float32 embeddings" in captured.out
    saved = np.load(out)
    assert saved.shape == (3, 32) and saved.dtype == np.float32
    assert (tmp_path / "out" / "vocab.names.txt").read_text() == "cat\ndog\ncar\n"
    expected = build_class_embeddings(tiny_clip, ["cat", "dog", "car"], get_templates("photo"))
    torch.testing.assert_close(torch.from_numpy(saved), expected)
    # the sidecar names file is a vocabulary for loading
    dog = load_class_embeddings(
        out, vocabulary=str(tmp_path / "out" / "vocab.names.txt"), select="dog"
    )
    torch.testing.assert_close(dog, expected[1:2])


def test_embed_text_checkpoint_synonyms_and_cache(tmp_path: Path, config_json: Path, tiny_clip):
    ckpt = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_clip.module.state_dict().items()}, ckpt)
    names = tmp_path / "names.txt"
    names.write_text("# LVIS classes\naerosol can\nbow (weapon)\n")
    out = tmp_path / "lvis.pt"
    argv = ["embed-text", "--encoder", f"open_clip-config:{config_json}:{ckpt}"]
    argv += ["--vocab", str(names), "--synonyms", "--templates", "single", "--out", str(out)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--batch-size", "3"]
    assert ovdet_main(argv) == 0
    first = torch.load(out, weights_only=True)
    classes = lvis_synonym_lists(["aerosol can", "bow (weapon)"])
    assert len(classes[0]) > 1
    torch.testing.assert_close(first, build_class_embeddings(tiny_clip, classes, ["a {}."]))
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    out.unlink()
    assert ovdet_main(argv) == 0  # served from the cache
    torch.testing.assert_close(torch.load(out, weights_only=True), first)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1


@pytest.mark.parametrize(
    ("vocab", "extra", "message"),
    [
        ("  ", [], "empty vocabulary spec"),
        ("cat,dog,cat", [], "duplicate class names"),
        ("missing/names.txt", [], "names.txt not found"),
        ("cat,unicorn horn", ["--synonyms"], "not LVIS v1 categories"),
    ],
)
def test_embed_text_bad_vocab(tmp_path, config_json, capsys, vocab, extra, message):
    argv = ["embed-text", "--encoder", f"open_clip-config:{config_json}", "--vocab", vocab]
    assert ovdet_main([*argv, *extra, "--out", str(tmp_path / "x.npy")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_embed_text_bad_encoder_and_output(tmp_path, config_json, capsys):
    out = ["--vocab", "cat", "--out", str(tmp_path / "x.npy")]
    assert ovdet_main(["embed-text", "--encoder", "clip:ViT-B-32", *out]) == 2
    assert "bad encoder spec" in capsys.readouterr().err
    missing = f"open_clip-config:{config_json}:{tmp_path / 'w.pt'}"
    assert ovdet_main(["embed-text", "--encoder", missing, *out]) == 2
    assert "w.pt not found" in capsys.readouterr().err
    bad_out = ["--vocab", "cat", "--out", str(tmp_path / "x.csv")]
    assert ovdet_main(["embed-text", "--encoder", f"open_clip-config:{config_json}", *bad_out]) == 2
    assert "suffix must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        ovdet_main(["embed-text", "--vocab", "cat"])
    assert exit_info.value.code == 2


def test_encoder_is_reusable_after_cli(tiny_clip):
    # the session-wide tiny model was not moved or switched to training by other tests
    assert isinstance(tiny_clip, OpenCLIPTextEncoder) and not tiny_clip.module.training
