"""Building SAM from a checkpoint or a ``--sam`` spec: the tiny SAM, type inference, and one
clear error for an unknown type, a missing file, a non-SAM file or a type that does not fit."""

from __future__ import annotations

import pytest
import torch

from ovdet.modeling.sam import (
    build_sam,
    build_small_sam,
    infer_sam_type,
    parse_sam_spec,
    sam_from_spec,
)
from ovdet.utils.errors import InputError


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    sam = build_small_sam()
    path = tmp_path_factory.mktemp("sam") / "small.pth"
    torch.save(sam.state_dict(), path)
    return path, sam


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_small_sam_shapes_and_checkpoint_round_trip(checkpoint):
    path, sam = checkpoint
    assert sam.image_encoder.img_size == 256
    assert sum(p.numel() for p in sam.parameters()) < 1_000_000
    assert _same_weights(build_small_sam(checkpoint=path), sam)
    assert _same_weights(build_sam("small", path), sam)
    assert _same_weights(build_sam(None, path), sam)  # type inferred
    assert infer_sam_type(sam.state_dict()) == "small"
    assert build_sam("small", None).image_encoder.img_size == 256  # random
    other = build_small_sam(img_size=320, embed_dim=96, prompt_dim=32)
    assert other.image_encoder.img_size == 320


def test_specs(checkpoint):
    path, sam = checkpoint
    assert parse_sam_spec(f"vit_b:{path}") == ("vit_b", path)
    assert parse_sam_spec(str(path)) == (None, path)
    for spec in (f"small:{path}", str(path)):
        model, identity = sam_from_spec(spec)
        assert _same_weights(model, sam)
        assert identity["type"] == "small" and identity["file"] == str(path)
        assert len(identity["sha256"]) == 64 and identity["spec"] == spec


@pytest.mark.parametrize(
    "spec, error, words",
    [
        ("vit_x:{path}", InputError, ["unknown SAM type 'vit_x'", "vit_b"]),
        ("small:", InputError, ["no checkpoint"]),
        ("vit_b:{missing}", FileNotFoundError, ["not found", "download"]),
        ("vit_h:{path}", InputError, ["does not fit SAM type 'vit_h'", "small SAM"]),
        ("{garbage}", InputError, ["could not be read as a state dict"]),
        ("{other}", InputError, ["not a SAM state dict"]),
        ("{folder}", InputError, ["is a folder"]),
    ],
)
def test_bad_specs_give_one_clear_error(checkpoint, tmp_path, spec, error, words):
    path, _ = checkpoint
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    spec = spec.format(
        path=path,
        missing=tmp_path / "sam_vit_b.pth",
        garbage=tmp_path / "garbage.pth",
        other=tmp_path / "other.pth",
        folder=tmp_path,
    )
    with pytest.raises(error) as info:
        sam_from_spec(spec)
    message = str(info.value)
    assert message.startswith("--sam ") and "\n" not in message
    for word in words:
        assert word in message, message


def test_a_small_checkpoint_of_other_sizes_is_refused(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save(build_small_sam(prompt_dim=32).state_dict(), path)
    with pytest.raises(InputError, match="does not fit SAM type 'small'.*other shapes"):
        build_sam("small", path)


def test_shipped_small_sam_by_name(tmp_path, monkeypatch):
    import shutil

    from ovdet.modeling.sam import build as sam_build
    from ovdet.modeling.sam import sam_from_spec, shipped_sam_names

    assert "ov-shapes-small-sam" in shipped_sam_names()
    sam, identity = sam_from_spec("ov-shapes-small-sam")
    assert identity["type"] == "small" and identity["sha256"].startswith("37b91809")
    assert sum(p.numel() for p in sam.parameters()) < 1_000_000
    # a changed shipped file is refused, naming it
    root = tmp_path / "sam"
    shutil.copytree(sam_build.shipped_sams_dir(), root)
    weights = root / "ov-shapes-small-sam" / "sam_small.pth"
    weights.write_bytes(weights.read_bytes()[:-10])
    monkeypatch.setattr(sam_build, "shipped_sams_dir", lambda: root)
    with pytest.raises(InputError, match="sha256"):
        sam_from_spec("ov-shapes-small-sam")
    # another word is still an unknown checkpoint, not a shipped name
    with pytest.raises(FileNotFoundError):
        sam_from_spec("not-a-shipped-sam")
