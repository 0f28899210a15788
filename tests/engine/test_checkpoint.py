"""load_detectron2_weights: detectron2 model-zoo .pkl and .pth checkpoints."""

from __future__ import annotations

import pickle

import pytest
import torch
from detectron2.config import instantiate

from ovdet.engine.checkpoint import CheckpointMismatchError, load_detectron2_weights


def _pair(tiny_fpn_config):
    torch.manual_seed(0)
    src = instantiate(tiny_fpn_config(torch.randn(3, 16)).model)
    torch.manual_seed(1)
    dst = instantiate(tiny_fpn_config(torch.randn(7, 16)).model)
    return src, dst


def _backbone_equal(a, b) -> bool:
    sa, sb = a.backbone.bottom_up.state_dict(), b.backbone.bottom_up.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_detectron2_pkl_backbone(tmp_path, tiny_fpn_config):
    src, dst = _pair(tiny_fpn_config)
    assert not _backbone_equal(src, dst)
    # detectron2 model-zoo layout: {"model": {name: ndarray}, "__author__": ..., heuristics}
    weights = {
        k.removeprefix("backbone.bottom_up."): v.numpy()
        for k, v in src.state_dict().items()
        if k.startswith("backbone.bottom_up.")
    }
    path = tmp_path / "r18.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": weights, "__author__": "test", "matching_heuristics": True}, f)
    with pytest.raises(CheckpointMismatchError, match="backbone.bottom_up"):
        load_detectron2_weights(dst, path)  # a backbone alone does not fit the detector
    assert not _backbone_equal(src, dst)  # and a refused load changes nothing
    load_detectron2_weights(dst, path, partial="backbone.bottom_up")
    assert _backbone_equal(src, dst)


def test_load_detectron2_pth_full_model(tmp_path, tiny_fpn_config):
    src, dst = _pair(tiny_fpn_config)
    path = tmp_path / "model_final.pth"
    torch.save({"model": src.state_dict(), "iteration": 9}, path)
    extra = load_detectron2_weights(dst, path)
    assert extra.get("iteration") == 9
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)


def test_load_detectron2_weights_errors(tmp_path, tiny_fpn_config):
    model = instantiate(tiny_fpn_config(torch.randn(3, 16)).model)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_detectron2_weights(model, tmp_path / "missing.pkl")
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"0")
    with pytest.raises(ValueError, match="unsupported"):
        load_detectron2_weights(model, bad)
