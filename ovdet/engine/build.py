"""Config in, model out: the one place where ovdet loads a config, builds a model and loads
its weights (``ovdet detect``, ``eval``, ``extract-regions``, the predictor, the benchmark).

Two kinds of config are read:

- a LazyConfig ``.py`` / ``.yaml`` file (ovdet's own configs, with a ``model`` field), or an
  already loaded one;
- a detectron2 yacs ``.yaml`` (``MODEL.META_ARCHITECTURE`` ...), e.g. a model-zoo RPN used
  as a proposal source.

Config files are Python and are executed when loaded: load only configs you trust.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ovdet.utils.device import resolve_device

__all__ = [
    "build_model",
    "is_yacs_config",
    "load_config",
    "load_weights",
    "model_from_config",
    "test_augmentations",
]


def is_yacs_config(cfg: Any) -> bool:
    """True for a detectron2 yacs ``CfgNode`` (as opposed to a LazyConfig)."""
    from detectron2.config import CfgNode

    return isinstance(cfg, CfgNode)


def _is_yacs_file(path: Path) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return isinstance(data, dict) and "MODEL" in data and "model" not in data


def load_config(config: str | os.PathLike | Any, overrides: Sequence[str] = ()) -> Any:
    """Load a LazyConfig (or detectron2 yacs) file and apply ``key=value`` overrides.

    Args:
        config: a config file, or a config already loaded (returned with the overrides).
        overrides: ``key=value`` strings (LazyConfig) or ``KEY value`` pairs flattened as
            ``["KEY", "value", ...]`` (yacs).

    Returns:
        The LazyConfig (``omegaconf.DictConfig``) or the yacs ``CfgNode``.
    """
    from detectron2.config import LazyConfig, get_cfg

    overrides = list(overrides)
    if not isinstance(config, (str, os.PathLike)):
        if is_yacs_config(config):
            config.merge_from_list(overrides)
            return config
        return LazyConfig.apply_overrides(config, overrides)
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if _is_yacs_file(path):
        cfg = get_cfg()
        cfg.merge_from_file(str(path))
        cfg.merge_from_list(overrides)
        return cfg
    return LazyConfig.apply_overrides(LazyConfig.load(str(path)), overrides)


def build_model(cfg: Any, device: str | torch.device | None = "auto") -> nn.Module:
    """Instantiate the model of a loaded config on ``device`` (see :mod:`ovdet.utils.device`)."""
    device = resolve_device(device)
    if is_yacs_config(cfg):
        from detectron2.modeling import build_model as build_yacs_model

        cfg = cfg.clone()
        cfg.MODEL.DEVICE = device
        return build_yacs_model(cfg)
    from detectron2.config import instantiate

    if "model" not in cfg:
        raise KeyError("the config has no 'model' field; is it an ovdet LazyConfig?")
    return instantiate(cfg.model).to(device)


def load_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint into ``model``: ``.pth``/``.pt`` (``weights_only``), ``.safetensors``
    or a detectron2 model-zoo ``.pkl`` (see :class:`~ovdet.engine.checkpoint.
    OVDetectionCheckpointer`).

    Returns:
        The checkpoint's entries that are not model weights (e.g. ``iteration``).
    """
    from ovdet.engine.checkpoint import load_detectron2_weights

    return load_detectron2_weights(model, path)


def model_from_config(
    config: str | os.PathLike | Any,
    weights: str | os.PathLike | None = None,
    *,
    overrides: Sequence[str] = (),
    device: str | torch.device | None = "auto",
) -> tuple[nn.Module, Any]:
    """Load a config, build its model, load ``weights`` and put the model in eval mode.

    Args:
        config: config file or loaded config.
        weights: checkpoint path; None keeps the initialisation (random weights: tests).
        overrides: config overrides (see :func:`load_config`).
        device: "auto", "cpu", "cuda", ...

    Returns:
        (model in eval mode, the loaded config).
    """
    cfg = load_config(config, overrides)
    model = build_model(cfg, device)
    if weights is not None:
        load_weights(model, weights)
    return model.eval(), cfg


def test_augmentations(cfg: Any) -> list:
    """The test-time augmentations of a config, instantiated.

    LazyConfig: ``dataloader.test.mapper.augmentations``; yacs: ``ResizeShortestEdge`` of
    ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``; neither: detectron2's 800 x 1333 resize.
    """
    from detectron2.config import instantiate
    from detectron2.data import transforms as T

    if is_yacs_config(cfg):
        size = cfg.INPUT.MIN_SIZE_TEST
        return [T.ResizeShortestEdge([size, size], cfg.INPUT.MAX_SIZE_TEST)]
    try:
        augs = cfg.dataloader.test.mapper.augmentations
    except (AttributeError, KeyError):
        augs = None
    if augs is None:
        return [T.ResizeShortestEdge([800, 800], 1333)]
    return [aug if isinstance(aug, T.Augmentation) else instantiate(aug) for aug in augs]
