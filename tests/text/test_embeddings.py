from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovdet.data.builtin_meta import COCO_CLASS_NAMES, OV_COCO_BASE_NAMES, lvis_rare_names
from ovdet.text import (
    build_class_embeddings,
    load_class_embeddings,
    names_path,
    save_class_embeddings,
)

COCO_FILE = "clip_text_embeddings/coco_clip_a+cname.npy"
LVIS_FILE = "clip_text_embeddings/lvis_v1_clip_a+cname.npy"


# ---------------------------------------------------------------- build_class_embeddings


def test_build_matches_definition(counting_encoder):
    classes = ["cat", ["dog", "puppy"]]
    templates = ["a {}.", "a photo of a {}.", "{} in the wild"]
    out = build_class_embeddings(counting_encoder, classes, templates)
    assert out.shape == (2, 8) and out.dtype == torch.float32
    # all 9 prompts encoded in one call, one batch
    assert counting_encoder.encode_calls == 1
    assert counting_encoder.batches == [
        ["a cat.", "a photo of a cat.", "cat in the wild"]
        + ["a dog.", "a photo of a dog.", "dog in the wild"]
        + ["a puppy.", "a photo of a puppy.", "puppy in the wild"]
    ]
    for row, synonyms in zip(out, [["cat"], ["dog", "puppy"]]):
        prompts = [t.format(s) for s in synonyms for t in templates]
        each = F.normalize(counting_encoder.encode_batch(prompts), dim=-1)
        expected = F.normalize(each.mean(0), dim=0)
        torch.testing.assert_close(row, expected)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_build_batch_size_does_not_change_result(counting_encoder):
    classes = ["a", "b", "c", ["d", "e"]]
    full = build_class_embeddings(counting_encoder, classes, ["x {}", "y {}"])
    counting_encoder.batches.clear()
    small = build_class_embeddings(counting_encoder, classes, ["x {}", "y {}"], batch_size=3)
    assert [len(b) for b in counting_encoder.batches] == [3, 3, 3, 1]
    torch.testing.assert_close(full, small)


def test_build_bad_inputs(counting_encoder):
    with pytest.raises(ValueError, match="classes is empty"):
        build_class_embeddings(counting_encoder, [], ["a {}."])
    with pytest.raises(ValueError, match=r"classes\[1\] is an empty synonym list"):
        build_class_embeddings(counting_encoder, ["cat", []], ["a {}."])
    with pytest.raises(ValueError, match=r"classes\[0\] contains an empty"):
        build_class_embeddings(counting_encoder, [" "], ["a {}."])
    with pytest.raises(ValueError, match="exactly one"):
        build_class_embeddings(counting_encoder, ["cat"], ["a photo"])
    with pytest.raises(TypeError):
        build_class_embeddings(counting_encoder, "cat", ["a {}."])
    assert counting_encoder.encode_calls == 0


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".safetensors"])
def test_save_load_roundtrip(tmp_path: Path, suffix: str):
    raw = torch.randn(4, 6)
    path = save_class_embeddings(tmp_path / f"emb{suffix}", raw, ["a", "b", "c", "d"])
    assert names_path(path) == tmp_path / "emb.names.txt"
    assert names_path(path).read_text() == "a\nb\nc\nd\n"
    assert not list(tmp_path.glob("*.tmp"))
    loaded = load_class_embeddings(path)
    assert loaded.dtype == torch.float32
    torch.testing.assert_close(loaded, F.normalize(raw, dim=-1))
    picked = load_class_embeddings(path, vocabulary=str(names_path(path)), select=["d", "b"])
    torch.testing.assert_close(picked, F.normalize(raw, dim=-1)[[3, 1]])


def test_load_fp16_and_pt_dict(tmp_path: Path):
    raw = torch.randn(3, 5)
    np.save(tmp_path / "half.npy", raw.half().numpy())
    loaded = load_class_embeddings(tmp_path / "half.npy")
    assert loaded.dtype == torch.float32
    torch.testing.assert_close(loaded, F.normalize(raw.half().float(), dim=-1))
    torch.save({"embeddings": raw, "note": torch.zeros(1)}, tmp_path / "d.pt")
    torch.testing.assert_close(load_class_embeddings(tmp_path / "d.pt"), F.normalize(raw, dim=-1))
    torch.save({"x": raw, "y": raw}, tmp_path / "ambiguous.pt")
    with pytest.raises(ValueError, match=r"ambiguous.pt holds the keys \['x', 'y'\]"):
        load_class_embeddings(tmp_path / "ambiguous.pt")


def test_load_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="class embedding file .*nope.npy not found"):
        load_class_embeddings(tmp_path / "nope.npy")
    np.save(tmp_path / "vec.npy", np.zeros(7, dtype=np.float32))
    with pytest.raises(ValueError, match=r"vec.npy has shape \(7,\); expected a 2-D"):
        load_class_embeddings(tmp_path / "vec.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\)"):
        load_class_embeddings(tmp_path / "cube.npy")
    (tmp_path / "emb.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="suffix must be one of"):
        load_class_embeddings(tmp_path / "emb.txt")
    save_class_embeddings(tmp_path / "m.npy", torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"m.npy has 3 rows but the vocabulary has 2 names"):
        load_class_embeddings(tmp_path / "m.npy", vocabulary="cat,dog")
    with pytest.raises(ValueError, match="select= needs vocabulary="):
        load_class_embeddings(tmp_path / "m.npy", select=["cat"])
    with pytest.raises(ValueError, match=r"2 selected names are not in .*\['cow', 'emu'\]"):
        load_class_embeddings(tmp_path / "m.npy", vocabulary="cat,dog,owl", select="cow,owl,emu")
    with pytest.raises(
        ValueError, match="embedding file .*m.npy has dim 4 but the model expects 3"
    ):
        load_class_embeddings(tmp_path / "m.npy", expected_dim=3)


def test_save_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="suffix must be one of"):
        save_class_embeddings(tmp_path / "x.csv", torch.zeros(2, 2))
    with pytest.raises(ValueError, match="2-D"):
        save_class_embeddings(tmp_path / "x.npy", torch.zeros(2))
    with pytest.raises(ValueError, match="3 names for 2 embedding rows"):
        save_class_embeddings(tmp_path / "x.npy", torch.zeros(2, 2), ["a", "b", "c"])
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- real CLIP text embeddings


def test_real_coco_embeddings(test_data: Path):
    path = test_data / COCO_FILE
    raw = torch.from_numpy(np.load(path)).float()
    assert raw.shape == (80, 512)
    everything = load_class_embeddings(path, vocabulary="coco", expected_dim=512)
    torch.testing.assert_close(everything, F.normalize(raw, dim=-1))
    base = load_class_embeddings(path, vocabulary="coco", select="ov-coco-base")
    assert base.shape == (48, 512)
    rows = [COCO_CLASS_NAMES.index(name) for name in OV_COCO_BASE_NAMES]
    torch.testing.assert_close(base, F.normalize(raw[rows], dim=-1))
    # true CLIP semantics: related classes are closer than unrelated ones
    cat, dog, toilet, car, truck, banana = load_class_embeddings(
        path, vocabulary="coco", select="cat,dog,toilet,car,truck,banana"
    )
    assert cat @ dog > cat @ toilet
    assert car @ truck > car @ banana
    # each novel class' nearest base class is a sensible one
    novel = load_class_embeddings(path, vocabulary="coco", select="cow,bus,couch")
    nearest = [OV_COCO_BASE_NAMES[i] for i in (novel @ base.T).argmax(1)]
    assert nearest[0] in ("sheep", "horse") and nearest[1] in ("truck", "car", "train")
    assert nearest[2] in ("chair", "bed", "bench")  # seats
    with pytest.raises(ValueError, match="has dim 512 but the model expects 256"):
        load_class_embeddings(path, vocabulary="coco", expected_dim=256)


def test_real_lvis_embeddings(test_data: Path):
    path = test_data / LVIS_FILE
    full = load_class_embeddings(path, vocabulary="lvis")
    assert full.shape == (1203, 512)
    rare = load_class_embeddings(path, vocabulary="lvis", select=lvis_rare_names())
    assert rare.shape == (337, 512)
    # raw LVIS names match their readable form
    first = load_class_embeddings(path, vocabulary="lvis", select=["aerosol_can"])
    torch.testing.assert_close(first, full[:1])
    with pytest.raises(ValueError, match="1203 rows but the vocabulary has 80 names"):
        load_class_embeddings(path, vocabulary="coco")
