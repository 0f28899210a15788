"""A small CLIP built from open_clip's own model classes, for training a teacher from scratch.

The architecture is an open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``)
shipped as json files in ``ovdet/assets/clip_configs/`` and registered with open_clip's config
registry by :func:`register_clip_configs`. After registration the model is created exactly like a
real CLIP checkpoint read from a local file::

    from ovdet.teacher.small_clip import register_clip_configs
    register_clip_configs()
    model = open_clip.create_model("ovdet-small-clip", pretrained="teacher.pt")

Configs:

- ``ovdet-small-clip``: image tower = open_clip ``ModifiedResNet`` with one bottleneck per stage
  (width 16, attention pooling) on 64x64 inputs; text tower = 3-layer transformer, width 128,
  4 heads, context length 32 (short captions; the tokenizer truncates to it and keeps the
  end-of-text token); joint embedding 128-d. About 1.4 M image-tower parameters: trains on
  2 CPU cores in minutes.
- ``ovdet-small-clip-sigmoid``: the same towers plus a learnable ``logit_bias`` (init -10) and
  ``logit_scale`` initialised at log(10), as open_clip's SigLIP configs do; used by the
  ``siglip`` objective. (The name avoids the substring "siglip" because
  ``open_clip.get_tokenizer`` maps such names to the SentencePiece SigLIP tokenizer, which needs
  a download; these models use CLIP's BPE tokenizer.)

Image size and context length can be changed at creation (``image_size=``,
``context_length=``); they map to open_clip's ``force_image_size`` / ``force_context_length``.
Image preprocessing is open_clip's own (``create_model_and_transforms``: resize shortest side,
centre crop, OpenAI mean/std), so downstream crop-embedding code shares it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import open_clip
import torch
from torch import nn

from ovdet.utils.io import atomic_write, write_json

__all__ = [
    "CLIP_CONFIG_DIR",
    "SMALL_CLIP",
    "SMALL_CLIP_SIGMOID",
    "SmallCLIP",
    "create_small_clip",
    "load_small_clip",
    "register_clip_configs",
    "save_small_clip",
    "small_clip_config",
]

CLIP_CONFIG_DIR = Path(__file__).resolve().parents[1] / "assets" / "clip_configs"
SMALL_CLIP = "ovdet-small-clip"
SMALL_CLIP_SIGMOID = "ovdet-small-clip-sigmoid"
_BUILTIN_NAMES = (SMALL_CLIP, SMALL_CLIP_SIGMOID)


def register_clip_configs() -> list[str]:
    """Register ovdet's small CLIP configs with open_clip (idempotent).

    Returns:
        The registered config names (``["ovdet-small-clip", "ovdet-small-clip-sigmoid"]``).
    """
    known = set(open_clip.list_models())
    if not all(name in known for name in _BUILTIN_NAMES):
        open_clip.add_model_config(CLIP_CONFIG_DIR)
    missing = [name for name in _BUILTIN_NAMES if name not in open_clip.list_models()]
    if missing:
        raise RuntimeError(
            f"open_clip did not register {missing} from {CLIP_CONFIG_DIR}; "
            "check that the json files exist and hold embed_dim, vision_cfg and text_cfg"
        )
    return list(_BUILTIN_NAMES)


def small_clip_config(
    name: str = SMALL_CLIP,
    *,
    image_size: Optional[int] = None,
    context_length: Optional[int] = None,
) -> dict[str, Any]:
    """The open_clip model config of ``name`` with optional size overrides.

    Args:
        name: a registered open_clip config name (ovdet's are registered on demand).
        image_size: override of ``vision_cfg.image_size``.
        context_length: override of ``text_cfg.context_length``.

    Returns:
        A fresh dict (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...), json-serialisable.
    """
    register_clip_configs()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise KeyError(f"unknown open_clip config {name!r}; known: {open_clip.list_models()}")
    if image_size is not None:
        cfg["vision_cfg"]["image_size"] = int(image_size)
    if context_length is not None:
        cfg["text_cfg"]["context_length"] = int(context_length)
    return cfg


@dataclass
class SmallCLIP:
    """An open_clip model with its preprocessing and tokenizer.

    Attributes:
        model: ``open_clip.CLIP``; ``encode_image((N, 3, S, S)) -> (N, D)``,
            ``encode_text((N, context_length) long) -> (N, D)``.
        preprocess: open_clip's eval transform, PIL image -> (3, S, S) float tensor.
        preprocess_train: open_clip's train transform (random resized crop).
        tokenizer: open_clip tokenizer, list[str] -> (N, context_length) long; truncates.
        config_name: the open_clip config name the model was built from.
        model_cfg: the exact model config (with overrides applied), json-serialisable.
    """

    model: nn.Module
    preprocess: Callable
    preprocess_train: Callable
    tokenizer: Callable
    config_name: str
    model_cfg: dict[str, Any]

    @property
    def image_size(self) -> int:
        return int(self.model_cfg["vision_cfg"]["image_size"])

    @property
    def context_length(self) -> int:
        return int(self.model_cfg["text_cfg"]["context_length"])


def create_small_clip(
    name: str = SMALL_CLIP,
    pretrained: Optional[Union[str, Path]] = None,
    *,
    image_size: Optional[int] = None,
    context_length: Optional[int] = None,
    device: Union[str, torch.device] = "cpu",
) -> SmallCLIP:
    """Create a (small) CLIP through ``open_clip.create_model_and_transforms``.

    Args:
        name: open_clip config name (default ``ovdet-small-clip``).
        pretrained: a local checkpoint file (state_dict ``.pt``/``.bin`` or ``.safetensors``),
            or None for random weights.
        image_size: input resolution override (``force_image_size``).
        context_length: text context length override (``force_context_length``).
        device: where the model lives.

    Returns:
        :class:`SmallCLIP` with the model in train mode (open_clip's default).
    """
    cfg = small_clip_config(name, image_size=image_size, context_length=context_length)
    if pretrained is not None and not Path(pretrained).is_file():
        raise FileNotFoundError(f"CLIP checkpoint not found: {pretrained}")
    model, preprocess_train, preprocess = open_clip.create_model_and_transforms(
        name,
        pretrained=None if pretrained is None else str(pretrained),
        force_image_size=image_size,
        force_context_length=context_length,
        device=device,
    )
    # get_tokenizer takes the context length from the registered config unless told otherwise;
    # pass the model's so that truncation matches a forced context length.
    context = cfg["text_cfg"]["context_length"]
    if "siglip" in name.lower() and "hf_tokenizer_name" not in cfg["text_cfg"]:
        # get_tokenizer would pick the SentencePiece SigLIP tokenizer for such a name (a
        # download); these configs are trained with CLIP's BPE tokenizer.
        tokenizer = open_clip.SimpleTokenizer(context_length=context)
    else:
        tokenizer = open_clip.get_tokenizer(name, context_length=context)
    return SmallCLIP(model, preprocess, preprocess_train, tokenizer, name, cfg)


def config_path_for(checkpoint: Union[str, Path]) -> Path:
    """The model-config json beside ``checkpoint`` (``teacher.pt`` -> ``teacher.json``)."""
    return Path(checkpoint).with_suffix(".json")


def save_small_clip(clip: SmallCLIP, path: Union[str, Path]) -> tuple[Path, Path]:
    """Save the weights as a plain state_dict and the model config json beside it.

    ``path`` ending in ``.safetensors`` is written with safetensors, anything else with
    ``torch.save`` of a ``dict[str, Tensor]`` (loadable with ``weights_only=True``). The json
    (``<path stem>.json``) holds the open_clip model config only (``embed_dim``, ``vision_cfg``,
    ``text_cfg``, ...), so ``open_clip.add_model_config(json)`` registers it under its stem.

    Returns:
        (checkpoint path, config json path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu").contiguous().clone() for k, v in clip.model.state_dict().items()
    }
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        atomic_write(path, lambda tmp: save_file(state, tmp))
    else:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    cfg_path = config_path_for(path)
    write_json(cfg_path, clip.model_cfg, indent=2)
    return path, cfg_path


def _strip_sizes(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = json.loads(json.dumps(cfg))
    cfg["vision_cfg"].pop("image_size", None)
    cfg["text_cfg"].pop("context_length", None)
    return cfg


def load_small_clip(
    checkpoint: Union[str, Path],
    *,
    config: Optional[Union[str, Path]] = None,
    device: Union[str, torch.device] = "cpu",
) -> SmallCLIP:
    """Load a checkpoint written by :func:`save_small_clip` (or ``ovdet pretrain-clip``).

    The model config is read from ``config`` or from the json beside the checkpoint. If it is
    one of ovdet's registered configs up to image size / context length, the model is created as
    ``open_clip.create_model(<that name>, pretrained=checkpoint, force_image_size=...,
    force_context_length=...)``; otherwise the json is registered with
    ``open_clip.add_model_config`` and used under its file stem.

    Args:
        checkpoint: state_dict file (``.pt`` or ``.safetensors``).
        config: model-config json; default ``<checkpoint stem>.json`` beside it.
        device: where the model lives.

    Returns:
        :class:`SmallCLIP` in eval mode.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"CLIP checkpoint not found: {checkpoint}")
    cfg_path = Path(config) if config is not None else config_path_for(checkpoint)
    if not cfg_path.is_file():
        raise FileNotFoundError(
            f"model config json for {checkpoint} not found at {cfg_path}; pass config=... "
            f"or create the model with open_clip.create_model(<config name>, pretrained=...)"
        )
    cfg = json.loads(cfg_path.read_text())
    for key in ("embed_dim", "vision_cfg", "text_cfg"):
        if key not in cfg:
            raise ValueError(f"{cfg_path}: missing field {key!r} of an open_clip model config")
    register_clip_configs()
    name = None
    for candidate in _BUILTIN_NAMES:
        if _strip_sizes(open_clip.get_model_config(candidate)) == _strip_sizes(cfg):
            name = candidate
            break
    if name is None:
        open_clip.add_model_config(cfg_path)
        name = cfg_path.stem
    clip = create_small_clip(
        name,
        pretrained=checkpoint,
        image_size=cfg["vision_cfg"].get("image_size"),
        context_length=cfg["text_cfg"].get("context_length"),
        device=device,
    )
    clip.model.eval()
    return clip
