"""The one rule for device arguments ("auto", "cpu", "cuda", "cuda:1") across ovdet.

``"auto"`` (or None) means CUDA when present, else the CPU. A CUDA device that was asked for
explicitly is never silently replaced by the CPU: a run that the user meant for a GPU should
stop with a clear message, not take hours on the CPU. Configs therefore default to
``train.device = "auto"``.
"""

from __future__ import annotations

import re

import torch

__all__ = ["resolve_device"]

_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def resolve_device(spec: str | torch.device | None = "auto", *, where: str = "--device") -> str:
    """The device to run on, as a string torch understands.

    Args:
        spec: ``"auto"`` / None (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"``, ``"mps"`` or a :class:`torch.device`.
        where: the option or config key the spec came from, named in errors.

    Returns:
        ``"cuda"``, ``"cuda:N"``, ``"cpu"`` or ``"mps"``.

    Raises:
        ValueError: the spec is not a device name.
        RuntimeError: a CUDA device is asked for on a machine without CUDA (or beyond its
            device count).
    """
    if spec is None:
        spec = "auto"
    spec = str(spec).strip().lower()
    if not _SPEC.match(spec):
        raise ValueError(f"{where} {spec!r} is not a device; use auto, cpu, cuda or cuda:N")
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{where} {spec}: CUDA is not available on this machine; use cpu (or auto)"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"{where} {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return spec
