"""The one device rule of ovdet (CLIs, configs, predictor)."""

from __future__ import annotations

import pytest
import torch

from ovdet.utils.device import resolve_device


def test_auto_and_explicit_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == "cpu"
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == "cpu"
    with pytest.raises(RuntimeError, match="--device cuda:1: CUDA is not available"):
        resolve_device("cuda:1")
    with pytest.raises(RuntimeError, match="train.device cuda: CUDA is not available"):
        resolve_device("cuda", where="train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(RuntimeError, match="has 2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["gpu", "cuda0", "cuda:x", ""])
def test_unknown_device_names_are_refused(spec):
    with pytest.raises(ValueError, match="is not a device"):
        resolve_device(spec)
