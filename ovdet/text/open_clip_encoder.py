"""``OpenCLIPTextEncoder``: the text tower of an open_clip CLIP model."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ovdet.text.clip_models import (
    ConfigLike,
    create_clip_from_config,
    create_clip_tokenizer,
    load_clip_config,
)
from ovdet.text.encoder import (
    TextEncoder,
    default_device,
    file_identity,
    module_device,
    state_dict_digest,
)
from ovdet.text.known_tokens import KnownTokens


class OpenCLIPTextEncoder(TextEncoder):
    """Encodes text with an open_clip model's ``encode_text``.

    Three ways to get the model:

    * ``OpenCLIPTextEncoder("ViT-B-32", "laion2b_s34b_b79k")``: an open_clip architecture
      name and a pretrained tag (downloads on first use, needs network) or a local checkpoint
      file (``.pt``/``.bin`` via ``torch.load(weights_only=True)``, or ``.safetensors``).
      ``pretrained=None`` gives random weights.
    * ``OpenCLIPTextEncoder("local-dir:/path/folder")``: open_clip's own local format, a folder
      with ``open_clip_config.json`` (``{"model_cfg": ...}``) and a weights file.
    * ``OpenCLIPTextEncoder(model=clip, tokenizer=tok)``: an already-built model (e.g. a
      CLIP teacher being trained); the tokenizer defaults to ``model_name``'s.
    * :meth:`from_config`: an architecture config dict/json (plus optional checkpoint).

    Args:
        model_name: open_clip architecture name (e.g. ``"ViT-B-32"``).
        pretrained: pretrained tag or path to a local checkpoint; ignored with ``model``.
        model: an open_clip model (anything with ``encode_text(tokens)``).
        tokenizer: callable ``list[str] -> LongTensor (N, L)``; default
            ``open_clip.get_tokenizer(model_name)`` with the model's context length.
        device: where to encode. Default: a built model goes to ``cuda`` when available,
            else ``cpu``; a passed ``model`` stays on its current device.
        known_tokens: the token ids the model has embedding rows for, when its token table
            is pruned (a model bundle's text tower): texts needing others are refused
            (:meth:`check_texts`). ``None`` (a full model): no check.

    ``identity`` names the weights: the tag; or the resolved path, size and mtime of the
    checkpoint (or of the local-dir folder's files); or, for an in-memory or randomly
    initialised model, a SHA-256 of its state dict computed on first use and memoised -- so it
    does not follow later in-place updates of a lent model; build a new encoder after
    changing the weights.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | os.PathLike | None = None,
        *,
        model: nn.Module | None = None,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
        device: str | torch.device | None = None,
        known_tokens: KnownTokens | None = None,
    ) -> None:
        import open_clip

        self._model_name = model_name
        self._identity: str | None = None
        if model is None:
            if model_name.startswith(_LOCAL_DIR):
                # open_clip reads open_clip_config.json + the weights file from the folder
                folder = Path(model_name[len(_LOCAL_DIR) :]).expanduser()
                if not folder.is_dir():
                    raise FileNotFoundError(f"open_clip model folder {folder} not found")
                files = sorted(f for f in folder.iterdir() if f.is_file())
                self._identity = "open_clip:local-dir:" + ";".join(map(file_identity, files))
                model_name = f"{_LOCAL_DIR}{folder}"
                pretrained = None
            elif pretrained is not None and _looks_like_path(pretrained):
                path = Path(pretrained)
                if not path.is_file():
                    raise FileNotFoundError(
                        f"open_clip checkpoint {path} not found (pretrained= takes an open_clip "
                        "tag such as 'laion2b_s34b_b79k' or an existing local file)"
                    )
                self._identity = f"open_clip:{model_name}:file:{file_identity(path)}"
                pretrained = str(path)
            elif pretrained is not None:
                self._identity = f"open_clip:{model_name}:tag:{pretrained}"
            model = open_clip.create_model(model_name, pretrained=pretrained, weights_only=True)
            target = torch.device(device) if device is not None else default_device()
        else:
            target = torch.device(device) if device is not None else module_device(model)
        if not hasattr(model, "encode_text"):
            raise TypeError(f"{type(model).__name__} has no encode_text(); pass an open_clip model")
        if tokenizer is None:
            tokenizer = open_clip.get_tokenizer(
                model_name, context_length=getattr(model, "context_length", None)
            )
        self._model = model.to(target)
        self._tokenizer = tokenizer
        self._device = target
        self._dim: int | None = None
        self._known_tokens = known_tokens

    @classmethod
    def from_config(
        cls,
        config: ConfigLike,
        checkpoint: str | os.PathLike | None = None,
        *,
        seed: int | None = None,
        device: str | torch.device | None = None,
    ) -> OpenCLIPTextEncoder:
        """Encoder over a model built from an architecture config (see ``clip_models``).

        Args:
            config: open_clip ``model_cfg`` dict or json file.
            checkpoint: optional local weights file.
            seed: seed of the random initialisation (when no checkpoint is given).
            device: as in the constructor (default ``cuda`` when available).
        """
        cfg = load_clip_config(config)
        model = create_clip_from_config(cfg, checkpoint, seed=seed)
        encoder = cls(
            model_name="custom",
            model=model,
            tokenizer=create_clip_tokenizer(cfg),
            device=device if device is not None else default_device(),
        )
        if checkpoint is not None:
            cfg_hash = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
            encoder._identity = f"open_clip-config:{cfg_hash}:file:{file_identity(checkpoint)}"
        return encoder

    @property
    def module(self) -> nn.Module:
        return self._model

    @property
    def tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        return self._tokenizer

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def known_tokens(self) -> KnownTokens | None:
        """The token ids of a pruned token table (None: a full model)."""
        return self._known_tokens

    def check_texts(self, texts: Sequence[str], names: Sequence[str] | None = None) -> None:
        if self._known_tokens is not None:
            self._known_tokens.check(self._tokenizer, texts, names)

    @property
    def dim(self) -> int:
        if self._dim is None:
            # open_clip models do not record the text output size uniformly: probe it once
            self._dim = int(self.encode([""]).shape[1])
        return self._dim

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = (
                f"open_clip:{self._model_name}:sha256:{state_dict_digest(self._model)}"
                f"|tokenizer:{_tokenizer_identity(self._tokenizer)}"
            )
        return self._identity

    def encode_batch(self, texts: list[str]) -> torch.Tensor:
        """Returns (len(texts), D) raw ``encode_text`` features."""
        tokens = self._tokenizer(texts).to(self._device)
        return self._model.encode_text(tokens)


_LOCAL_DIR = "local-dir:"


def _looks_like_path(value: str | os.PathLike) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return os.sep in value or "/" in value or Path(value).suffix != "" or Path(value).exists()


def _tokenizer_identity(tokenizer: object) -> str:
    name = type(tokenizer).__name__
    context = getattr(tokenizer, "context_length", None)
    return f"{name}:{context}"
