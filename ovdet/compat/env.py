"""``ovdet env``: versions of everything ovdet runs on, and which detectron2 it found.

Paste its output into bug reports. ``--json`` prints the same facts as one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from typing import Union

from ovdet.compat import detectron2_has_compiled_ops

__all__ = ["collect_env", "main"]

NOT_INSTALLED = "not installed"
INSTALL_COMPILED = "compiled"
INSTALL_FALLBACK = "python-only fallback (ovdet.compat stand-in)"

# (report key, import name, distribution name) of the libraries reported by version only.
# Versions come from the distribution metadata so that nothing heavy gets imported.
_LIBRARIES = (
    ("torchvision", "torchvision", "torchvision"),
    ("open_clip", "open_clip", "open_clip_torch"),
    ("transformers", "transformers", "transformers"),
    ("segment_anything", "segment_anything", "segment_anything"),
    ("pycocotools", "pycocotools", "pycocotools"),
    ("lvis", "lvis", "lvis"),
    ("albumentations", "albumentations", "albumentations"),
    ("numpy", "numpy", "numpy"),
    ("Pillow", "PIL", "Pillow"),
)

EnvValue = Union[str, bool, list]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(module: str, distribution: str) -> str:
    """Version of an installed library, or ``"not installed"``."""
    if not _installed(module):
        return NOT_INSTALLED
    loaded = sys.modules.get(module)
    if isinstance(getattr(loaded, "__version__", None), str):
        return loaded.__version__  # keeps local tags such as "+cu130" that metadata drops
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        # Importable without distribution metadata (e.g. a source checkout on sys.path).
        return str(getattr(importlib.import_module(module), "__version__", "unknown version"))


def _torch_info() -> dict[str, EnvValue]:
    if not _installed("torch"):
        return {
            "torch": NOT_INSTALLED,
            "torch.cuda_available": False,
            "torch.cuda_version": NOT_INSTALLED,
            "gpus": [],
        }
    import torch

    available = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "torch": torch.__version__,
        "torch.cuda_available": available,
        "torch.cuda_version": torch.version.cuda or "none (CPU build)",
        "gpus": gpus if available else [],
    }


def _detectron2_info() -> dict[str, EnvValue]:
    if not _installed("detectron2"):
        return {
            "detectron2": NOT_INSTALLED,
            "detectron2.install": NOT_INSTALLED,
            "detectron2.path": "",
        }
    import detectron2

    compiled = detectron2_has_compiled_ops()
    return {
        "detectron2": str(getattr(detectron2, "__version__", "unknown version")),
        "detectron2.install": INSTALL_COMPILED if compiled else INSTALL_FALLBACK,
        "detectron2.path": os.path.dirname(os.path.abspath(detectron2.__file__)),
    }


def collect_env() -> dict[str, EnvValue]:
    """Facts about the environment, in report order.

    Returns:
        Flat dict. Keys: ``python``, ``platform``, ``ovdet``, ``torch``,
        ``torch.cuda_available`` (bool), ``torch.cuda_version``, ``gpus`` (list of device
        names), ``torchvision``, ``detectron2``, ``detectron2.install`` (``"compiled"`` or
        ``"python-only fallback (ovdet.compat stand-in)"``), ``detectron2.path``,
        ``open_clip``, ``transformers``, ``segment_anything``, ``pycocotools``, ``lvis``,
        ``albumentations``, ``numpy``, ``Pillow``. Library values are version strings or
        ``"not installed"``.
    """
    from ovdet import __version__

    env: dict[str, EnvValue] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "ovdet": __version__,
    }
    env.update(_torch_info())
    libraries = {key: _version(module, dist) for key, module, dist in _LIBRARIES}
    env["torchvision"] = libraries.pop("torchvision")
    env.update(_detectron2_info())
    env.update(libraries)
    return env


def _format_value(value: EnvValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    return str(value)


def format_table(env: dict[str, EnvValue]) -> str:
    """Two aligned columns, one fact per line."""
    width = max(map(len, env))
    return "\n".join(f"{key.ljust(width)}  {_format_value(value)}" for key, value in env.items())


def main(argv: list[str] | None = None) -> int:
    """``ovdet env [--json]``."""
    parser = argparse.ArgumentParser(
        prog="ovdet env",
        description="Print versions of Python, PyTorch/CUDA, detectron2 (compiled or "
        "Python-only fallback) and the libraries ovdet uses.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    env = collect_env()
    print(json.dumps(env, indent=2) if args.json else format_table(env))
    return 0
