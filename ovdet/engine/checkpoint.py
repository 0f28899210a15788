"""Load detectron2-format weights (model-zoo ``.pkl``, ``.pth``, ``.safetensors``) into a model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

__all__ = ["OVDetectionCheckpointer", "load_detectron2_weights"]

logger = logging.getLogger(__name__)


class OVDetectionCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` that reads ``.pth``/``.pt`` with ``weights_only=True``.

    - ``.pkl``: detectron2 / Detectron / Caffe2 model-zoo pickles (e.g. ``R-50.pkl``), read by
      detectron2 (name-matching heuristics convert Caffe2 names). Pickles can run code when
      loaded: only load files you trust.
    - ``.pth`` / ``.pt``: ``torch.load(..., weights_only=True)``; a bare state dict or
      ``{"model": state_dict, ...}``.
    - ``.safetensors``: a flat state dict.
    """

    def _load_file(self, filename: str) -> dict[str, Any]:
        suffix = Path(filename).suffix
        if suffix in (".pth", ".pt"):
            loaded = torch.load(filename, map_location="cpu", weights_only=True)
        elif suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(filename, device="cpu")
        else:
            return super()._load_file(filename)
        if not isinstance(loaded, dict):
            raise ValueError(
                f"{filename}: expected a state dict (or {{'model': state_dict}}), "
                f"got {type(loaded).__name__}"
            )
        if "model" not in loaded:
            loaded = {"model": loaded}
        return loaded


def load_detectron2_weights(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load detectron2-format weights into ``model`` (typically an :class:`OVRCNN`).

    Backbone checkpoints from the detectron2 model zoo (``R-50.pkl``, ImageNet, Caffe2
    names) are matched by detectron2's heuristics onto ``backbone.bottom_up.*``; full
    detector checkpoints load by name. Parameters missing from the file (e.g. the
    open-vocabulary classifier) keep their initialisation and are logged; shape mismatches
    are skipped and logged.

    Args:
        model: the model to load into (modified in place).
        path: a local ``.pkl``, ``.pth``, ``.pt`` or ``.safetensors`` file.

    Returns:
        The checkpoint's extra entries that are not model weights (e.g. ``iteration``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_detectron2_weights: checkpoint {path} does not exist")
    if path.suffix not in (".pkl", ".pth", ".pt", ".safetensors"):
        raise ValueError(
            f"load_detectron2_weights: unsupported checkpoint format {path.suffix!r} "
            f"({path}); expected .pkl, .pth, .pt or .safetensors"
        )
    checkpointer = OVDetectionCheckpointer(model, save_dir="", save_to_disk=False)
    extra = checkpointer.load(str(path), checkpointables=[])
    logger.info("Loaded detectron2 weights from %s", path)
    return extra
