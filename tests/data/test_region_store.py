"""RegionEmbeddingStore: round trip, crash safety / resume, metadata checks."""

from __future__ import annotations

import json
import pickle
import zlib

import pytest
import torch

from ovdet.data.region_store import RegionEmbeddingStore

D = 8


def make_targets(seed: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(m, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 1 + torch.rand(m, 2, generator=g) * 20], dim=1)
    emb = torch.nn.functional.normalize(torch.randn(m, D, generator=g), dim=1)
    return boxes, emb, torch.rand(m, generator=g)


def new_store(root, **kwargs) -> RegionEmbeddingStore:
    args = dict(teacher="test-teacher", dim=D, scales=(1.0, 1.5), top_m=4, proposals="test")
    args.update(kwargs)
    return RegionEmbeddingStore(root, **args)


IDS = [1, 7, "a/b.jpg", 42, "0042", 3]


def fill(store, ids, rank=0, shard_size=2, crash_after=None):
    with store.writer(rank=rank, shard_size=shard_size) as w:
        for k, image_id in enumerate(ids):
            if crash_after is not None and k == crash_after:
                raise RuntimeError("simulated crash")
            boxes, emb, scores = make_targets(zlib.crc32(str(image_id).encode()) % 1000, k % 4)
            w.add(image_id, boxes, emb, None if image_id == 3 else scores)


def test_round_trip_int_and_str_ids_float16(tmp_path):
    store = new_store(tmp_path / "s")
    fill(store, IDS)
    # fresh reader
    reader = RegionEmbeddingStore(tmp_path / "s")
    assert len(reader) == len(IDS) and reader.dim == D and reader.dtype == torch.float16
    assert set(reader.ids()) == set(IDS) and reader.done_ids() == set(IDS)
    for k, image_id in enumerate(IDS):
        assert image_id in reader
        boxes, emb, scores = make_targets(zlib.crc32(str(image_id).encode()) % 1000, k % 4)
        out = reader.get(image_id)
        assert out["boxes"].dtype == torch.float32 and out["embeddings"].dtype == torch.float16
        torch.testing.assert_close(out["boxes"], boxes)
        torch.testing.assert_close(out["embeddings"], emb.half())
        assert out["embeddings"].shape == (k % 4, D)
        if image_id == 3:
            assert out["scores"] is None
        else:
            torch.testing.assert_close(out["scores"], scores)
    # ids keep their type: 42 and "0042" are distinct, "42" is not stored
    assert "42" not in reader and 42 in reader
    with pytest.raises(KeyError, match="ids keep their type"):
        reader.get("42")
    # LRU bound on open shards, and a pickled reader (data loader workers) reads again
    small = RegionEmbeddingStore(tmp_path / "s", max_open_shards=1)
    for image_id in IDS:
        small.get(image_id)
    assert len(small._open) == 1
    clone = pickle.loads(pickle.dumps(small))
    torch.testing.assert_close(clone.get(7)["embeddings"], reader.get(7)["embeddings"])
    # layout on disk
    files = sorted(p.name for p in (tmp_path / "s" / "shards").iterdir())
    assert files == [f"r0-00000{i}.safetensors" for i in range(3)]
    assert (tmp_path / "s" / "index-rank0.jsonl").read_text().count("\n") == 3
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["teacher"] == "test-teacher" and meta["dtype"] == "float16"
    assert meta["scales"] == [1.0, 1.5] and meta["top_m"] == 4


def test_float32_store_and_add_validation(tmp_path):
    store = new_store(tmp_path / "s", dtype="float32")
    boxes, emb, _ = make_targets(0, 3)
    with store.writer() as w:
        w.add(5, boxes, emb)
        with pytest.raises(ValueError, match="already in region store"):
            w.add(5, boxes, emb)
        with pytest.raises(ValueError, match=r"embeddings must be \(M, D\) = \(3, 8\)"):
            w.add(6, boxes, emb[:, :4])
        with pytest.raises(ValueError, match="boxes must be"):
            w.add(6, boxes[:, :3], emb)
        with pytest.raises(TypeError, match="int or a str"):
            w.add(1.5, boxes, emb)
    assert store.get(5)["embeddings"].dtype == torch.float32
    torch.testing.assert_close(store.get(5)["embeddings"], emb)
    with store.writer() as w, pytest.raises(ValueError, match="already in region store"):
        w.add(5, boxes, emb)


def test_metadata_mismatch_is_an_error_naming_both(tmp_path):
    new_store(tmp_path / "s")
    with pytest.raises(ValueError, match="teacher='test-teacher'.*teacher='other'"):
        new_store(tmp_path / "s", teacher="other")
    with pytest.raises(ValueError, match="dim=8.*dim=16"):
        new_store(tmp_path / "s", dim=16)
    with pytest.raises(ValueError, match="scales"):
        new_store(tmp_path / "s", scales=(1.0,))
    with pytest.raises(FileNotFoundError, match="no region store"):
        RegionEmbeddingStore(tmp_path / "missing")
    # reading without expectations works; equal settings reopen
    assert RegionEmbeddingStore(tmp_path / "s").teacher == "test-teacher"
    new_store(tmp_path / "s")


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    reference = new_store(tmp_path / "ref")
    fill(reference, IDS)

    store = new_store(tmp_path / "s")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fill(store, IDS, crash_after=3)  # the 3 finished images are committed on the way out
    assert store.done_ids() == set(IDS[:3])
    # a hard kill while writing: a stray temporary shard and a torn index line
    shard_dir = tmp_path / "s" / "shards"
    stray = shard_dir / ".r0-000009.safetensors.k3x9q1.tmp"
    stray.write_bytes(b"half a shard")
    with open(tmp_path / "s" / "index-rank0.jsonl", "a") as f:
        f.write('{"shard": "shards/r0-000009.safetensors", "ids": [')
    reopened = RegionEmbeddingStore(tmp_path / "s")
    assert reopened.done_ids() == set(IDS[:3])  # the torn line and the temp file are ignored

    with reopened.writer(rank=0, shard_size=2) as w:
        assert not stray.exists()  # the writer removed the stray temp file
        for k, image_id in enumerate(IDS):
            if image_id in reopened.done_ids():
                continue
            boxes, emb, scores = make_targets(zlib.crc32(str(image_id).encode()) % 1000, k % 4)
            w.add(image_id, boxes, emb, None if image_id == 3 else scores)

    final = RegionEmbeddingStore(tmp_path / "s")
    lines = (tmp_path / "s" / "index-rank0.jsonl").read_text().splitlines()
    all_ids = [i for line in lines for i in json.loads(line)["ids"]]
    assert sorted(map(str, all_ids)) == sorted(map(str, IDS))  # every image exactly once
    for image_id in IDS:
        a, b = final.get(image_id), reference.get(image_id)
        torch.testing.assert_close(a["boxes"], b["boxes"])
        torch.testing.assert_close(a["embeddings"], b["embeddings"])


def test_ranks_write_concurrently_and_union(tmp_path):
    store0 = new_store(tmp_path / "s")
    store1 = new_store(tmp_path / "s")
    with store0.writer(rank=0, shard_size=1) as w0, store1.writer(rank=1, shard_size=1) as w1:
        for k, image_id in enumerate(IDS):
            boxes, emb, scores = make_targets(k, 2)
            (w0 if k % 2 == 0 else w1).add(image_id, boxes, emb, scores)
    reader = RegionEmbeddingStore(tmp_path / "s")
    assert reader.done_ids() == set(IDS) and len(reader) == len(IDS)
    for k, image_id in enumerate(IDS):
        torch.testing.assert_close(reader.get(image_id)["boxes"], make_targets(k, 2)[0])
    # a corrupt line in the middle of an index is an error naming the file and line
    path = tmp_path / "s" / "index-rank1.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="index-rank1.jsonl: line 2"):
        RegionEmbeddingStore(tmp_path / "s").done_ids()
