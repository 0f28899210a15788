"""The one rule for device arguments ("auto", "cpu", "cuda", "cuda:1") across ovdet's CLIs."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(spec: str | None = "auto") -> str:
    """``"auto"`` / None -> "cuda" when CUDA is available, else "cpu"; others as given.

    Raises:
        RuntimeError: a CUDA device is asked for on a machine without CUDA (naming the spec).
    """
    if spec is None or spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {spec}: CUDA is not available on this machine; use cpu")
    return spec
