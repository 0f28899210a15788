from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from ovdet.text import (
    OpenCLIPTextEncoder,
    build_text_encoder,
    create_clip_from_config,
    load_clip_config,
    parse_encoder_spec,
    tiny_clip_config,
)
from ovdet.text.encoder import state_dict_digest

TEXTS = ["a photo of a cat.", "a dog", "an extremely long sentence " * 20, ""]


def test_encode_contract(tiny_clip):
    assert tiny_clip.dim == 32
    assert tiny_clip.device == torch.device("cpu")
    out = tiny_clip.encode(TEXTS)
    assert out.shape == (4, 32) and out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    assert not out.requires_grad
    torch.testing.assert_close(tiny_clip.encode(TEXTS, batch_size=1), out)
    assert tiny_clip.encode([]).shape == (0, 32)
    with pytest.raises(TypeError, match="not a single string"):
        tiny_clip.encode("cat")


def test_seeded_models_are_reproducible(clip_cfg, tiny_clip):
    again = OpenCLIPTextEncoder.from_config(clip_cfg, seed=0, device="cpu")
    assert again.identity == tiny_clip.identity
    torch.testing.assert_close(again.encode(TEXTS), tiny_clip.encode(TEXTS))
    other = OpenCLIPTextEncoder.from_config(clip_cfg, seed=1, device="cpu")
    assert other.identity != tiny_clip.identity
    assert not torch.allclose(other.encode(TEXTS), tiny_clip.encode(TEXTS))


def test_lent_model_keeps_its_mode_and_identity_tracks_weights(clip_cfg):
    model = create_clip_from_config(clip_cfg, seed=3)
    model.train()
    encoder = OpenCLIPTextEncoder(model=model)
    out = encoder.encode(TEXTS)
    assert model.training
    expected = model.eval().encode_text(open_clip.get_tokenizer("ViT-B-32")(TEXTS))
    torch.testing.assert_close(out, torch.nn.functional.normalize(expected.detach(), dim=-1))
    before = encoder.identity
    with torch.no_grad():
        model.text_projection[0, 0] += 1e-3
    assert OpenCLIPTextEncoder(model=model).identity != before


def test_state_dict_digest(clip_cfg):
    a = create_clip_from_config(clip_cfg, seed=0)
    b = create_clip_from_config(clip_cfg, seed=0)
    assert state_dict_digest(a) == state_dict_digest(b)
    with torch.no_grad():
        b.ln_final.bias[5] = 0.5
    assert state_dict_digest(a) != state_dict_digest(b)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_config_file_and_checkpoint(tmp_path: Path, clip_cfg, tiny_clip, suffix):
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps({"model_cfg": clip_cfg}))
    state = {k: v.contiguous() for k, v in tiny_clip.module.state_dict().items()}
    ckpt = tmp_path / f"tiny{suffix}"
    save_file(state, ckpt) if suffix == ".safetensors" else torch.save(state, ckpt)
    loaded = OpenCLIPTextEncoder.from_config(config_path, ckpt, device="cpu")
    torch.testing.assert_close(loaded.encode(TEXTS), tiny_clip.encode(TEXTS))
    assert "file:" in loaded.identity and str(ckpt.resolve()) in loaded.identity
    via_spec = build_text_encoder(f"open_clip-config:{config_path}:{ckpt}", device="cpu")
    assert via_spec.identity == loaded.identity
    # new weights in the same file -> new identity and new embeddings
    other = OpenCLIPTextEncoder.from_config(clip_cfg, seed=5).module.state_dict()
    other = {k: v.contiguous() for k, v in other.items()}
    save_file(other, ckpt) if suffix == ".safetensors" else torch.save(other, ckpt)
    reloaded = OpenCLIPTextEncoder.from_config(config_path, ckpt, device="cpu")
    assert reloaded.identity != loaded.identity
    assert not torch.allclose(reloaded.encode(TEXTS), loaded.encode(TEXTS))
    other["extra"] = torch.zeros(3)
    save_file(other, ckpt) if suffix == ".safetensors" else torch.save(other, ckpt)
    with pytest.raises(RuntimeError, match="extra"):  # loading is strict
        OpenCLIPTextEncoder.from_config(config_path, ckpt)


def test_open_clip_local_dir(tmp_path: Path, clip_cfg, tiny_clip):
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": clip_cfg}))
    state = {k: v.contiguous() for k, v in tiny_clip.module.state_dict().items()}
    save_file(state, tmp_path / "open_clip_model.safetensors")
    encoder = build_text_encoder(f"open_clip:local-dir:{tmp_path}", device="cpu")
    torch.testing.assert_close(encoder.encode(TEXTS), tiny_clip.encode(TEXTS))
    assert encoder.identity.startswith("open_clip:local-dir:")
    with pytest.raises(FileNotFoundError, match="folder .*nope not found"):
        OpenCLIPTextEncoder(f"local-dir:{tmp_path / 'nope'}")


def test_pretrained_path_is_loaded_with_weights_only(monkeypatch, tmp_path: Path, clip_cfg):
    """Builtin architecture + local file: wiring checked without building a ViT-B-32."""
    calls = []

    def fake_create_model(name, pretrained=None, **kwargs):
        calls.append((name, pretrained, kwargs))
        return create_clip_from_config(clip_cfg, seed=0)

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    ckpt = tmp_path / "clip.pt"
    ckpt.write_bytes(b"x" * 10)
    encoder = OpenCLIPTextEncoder("ViT-B-32", ckpt, device="cpu")
    assert calls == [("ViT-B-32", str(ckpt), {"weights_only": True})]
    assert (
        encoder.identity == f"open_clip:ViT-B-32:file:{ckpt.resolve()}|10|{ckpt.stat().st_mtime_ns}"
    )
    ckpt.write_bytes(b"y" * 11)
    assert OpenCLIPTextEncoder("ViT-B-32", ckpt).identity != encoder.identity
    tagged = OpenCLIPTextEncoder("ViT-B-32", "laion2b_s34b_b79k", device="cpu")
    assert calls[-1][1] == "laion2b_s34b_b79k"
    assert tagged.identity == "open_clip:ViT-B-32:tag:laion2b_s34b_b79k"


def test_bad_open_clip_inputs(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="checkpoint .*missing.pt not found"):
        OpenCLIPTextEncoder("ViT-B-32", str(tmp_path / "missing.pt"))
    with pytest.raises(FileNotFoundError, match="config file .*none.json not found"):
        load_clip_config(tmp_path / "none.json")
    with pytest.raises(ValueError, match=r"lacks \['vision_cfg'\]"):
        load_clip_config({"embed_dim": 8, "text_cfg": {}})
    with pytest.raises(ValueError, match="multiple of patch_size"):
        tiny_clip_config(image_size=30)
    with pytest.raises(TypeError, match="no encode_text"):
        OpenCLIPTextEncoder(model=torch.nn.Linear(2, 2), tokenizer=lambda t: t)
    with pytest.raises(FileNotFoundError, match="open_clip checkpoint"):
        create_clip_from_config(tiny_clip_config(), tmp_path / "w.pt")


def test_parse_encoder_spec():
    assert parse_encoder_spec("open_clip:ViT-B-32") == ("open_clip", "ViT-B-32", None)
    assert parse_encoder_spec("open_clip:ViT-B-32:openai") == ("open_clip", "ViT-B-32", "openai")
    assert parse_encoder_spec("open_clip-config:/a/c.json:/a/w.pt") == (
        "open_clip-config",
        "/a/c.json",
        "/a/w.pt",
    )
    assert parse_encoder_spec("hf:/models/bert") == ("hf", "/models/bert", None)
    for bad in ("clip:ViT-B-32", "open_clip", "open_clip:", "hf:"):
        with pytest.raises(ValueError, match="bad encoder spec"):
            parse_encoder_spec(bad)
