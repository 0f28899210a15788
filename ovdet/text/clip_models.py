"""Building open_clip models from architecture configs (no registry, no downloads).

open_clip separates architectures (json configs) from weights (tags or files). These helpers
build a model from a config given as a dict or json file -- e.g. a tiny CLIP for tests or
the OV-Shapes teacher -- without registering it in open_clip's global config table, and
load local weights with ``weights_only=True``.

A config is open_clip's ``model_cfg``: ``{"embed_dim", "vision_cfg", "text_cfg", ...}``; a
json file may hold it directly or under ``"model_cfg"`` (the ``open_clip_config.json`` form).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

ConfigLike = Union[dict, str, os.PathLike]


def tiny_clip_config(
    embed_dim: int = 32,
    image_size: int = 32,
    *,
    patch_size: int = 8,
    vision_width: int = 32,
    vision_layers: int = 1,
    text_width: int = 32,
    text_layers: int = 1,
    heads: int = 2,
    context_length: int = 77,
) -> dict[str, Any]:
    """Config of a tiny ViT CLIP that uses open_clip's standard BPE tokenizer.

    With the defaults (about 1.7M parameters, most in the 49408-token embedding table) the
    model runs in milliseconds on a CPU: for tests and smoke runs with random weights. (The
    OV-Shapes teacher's larger configs live in ``ovdet/assets/clip_configs``; they load with
    :func:`create_clip_from_config` too.)

    Args:
        embed_dim: joint image-text embedding dimension D.
        image_size: input resolution (must be a multiple of ``patch_size``).
        patch_size: ViT patch size.
        vision_width, vision_layers: image transformer width and depth.
        text_width, text_layers: text transformer width and depth.
        heads: attention heads of the text transformer (the image transformer uses
            ``vision_width // heads``-wide heads).
        context_length: tokens per text (prompts are truncated to it).

    Returns:
        A ``model_cfg`` dict for :func:`create_clip_from_config` (json-serialisable).
    """
    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
    if vision_width % heads or text_width % heads:
        raise ValueError(f"widths ({vision_width}, {text_width}) must be multiples of {heads=}")
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "image_size": image_size,
            "patch_size": patch_size,
            "width": vision_width,
            "layers": vision_layers,
            "head_width": vision_width // heads,
        },
        "text_cfg": {
            "context_length": context_length,
            "vocab_size": 49408,
            "width": text_width,
            "heads": heads,
            "layers": text_layers,
        },
    }


def load_clip_config(config: ConfigLike) -> dict[str, Any]:
    """Reads an open_clip model config from a dict or a json file (a copy is returned).

    Accepts the bare ``model_cfg`` or a file with it under ``"model_cfg"``.
    """
    if isinstance(config, Mapping):
        # a LazyConfig turns dicts into omegaconf DictConfig: convert back to plain types
        if type(config).__name__ == "DictConfig":
            from omegaconf import OmegaConf

            config = OmegaConf.to_container(config, resolve=True)
        cfg = copy.deepcopy(dict(config))
        where = "config dict"
    else:
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"open_clip config file {path} not found")
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        where = f"config file {path}"
    if isinstance(cfg, dict) and "model_cfg" in cfg:
        cfg = cfg["model_cfg"]
    if not isinstance(cfg, dict):
        raise ValueError(f"{where}: expected a json object, got {type(cfg).__name__}")
    missing = [key for key in ("embed_dim", "vision_cfg", "text_cfg") if key not in cfg]
    if missing:
        raise ValueError(
            f"{where} lacks {missing}: an open_clip model config needs embed_dim, vision_cfg "
            "and text_cfg (see open_clip/model_configs/*.json)"
        )
    return cfg


def create_clip_tokenizer(config: ConfigLike):
    """The open_clip tokenizer matching ``config``'s ``text_cfg``.

    The standard BPE tokenizer ships with open_clip (works offline); a config naming a
    Hugging Face tokenizer (``hf_tokenizer_name``) needs it in the local HF cache.
    """
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    text_cfg = load_clip_config(config)["text_cfg"]
    context_length = text_cfg.get("context_length", 77)
    kwargs = dict(text_cfg.get("tokenizer_kwargs") or {})
    if text_cfg.get("hf_tokenizer_name"):
        return HFTokenizer(
            text_cfg["hf_tokenizer_name"],
            context_length=context_length,
            tokenizer_mode=text_cfg.get("tokenizer_mode"),
            **kwargs,
        )
    return SimpleTokenizer(context_length=context_length, **kwargs)


def create_clip_from_config(
    config: ConfigLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> nn.Module:
    """Builds an open_clip model (``CLIP``, ``CustomTextCLIP`` or ``CoCa``) from a config.

    Args:
        config: ``model_cfg`` dict or path to a json file (see module docstring).
        checkpoint: optional local weights (``.pt``/``.pth``/``.bin`` read with
            ``torch.load(weights_only=True)``, or ``.safetensors``), a state dict or a dict
            with ``"state_dict"``, loaded strictly through open_clip's ``load_checkpoint``.
        seed: if given, the random initialisation is drawn from ``torch.manual_seed(seed)``
            (the global RNG state is restored afterwards), making random models reproducible.
        device: where to put the model (default CPU).

    Returns:
        The model in eval mode.
    """
    from open_clip import CLIP, CoCa, CustomTextCLIP, load_checkpoint

    cfg = load_clip_config(config)
    text_cfg = dict(cfg["text_cfg"])
    is_hf_text = "hf_model_name" in text_cfg
    if is_hf_text:
        # never download tower weights while building; a checkpoint provides them
        text_cfg["hf_model_pretrained"] = False
    cfg["text_cfg"] = text_cfg
    if "vision_cfg" in cfg and "timm_model_name" in cfg["vision_cfg"]:
        cfg["vision_cfg"] = {**cfg["vision_cfg"], "timm_model_pretrained": False}
    custom_text = bool(cfg.pop("custom_text", False)) or is_hf_text
    if "multimodal_cfg" in cfg:
        model_class = CoCa
    elif custom_text:
        model_class = CustomTextCLIP
    else:
        model_class = CLIP
    if seed is None:
        model = model_class(**cfg)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_class(**cfg)
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"open_clip checkpoint {path} not found")
        load_checkpoint(model, str(path), strict=True, weights_only=True)
    model.eval()
    return model.to(device if device is not None else "cpu")
