"""The ``TextEncoder`` interface: strings in, L2-normalised embeddings out.

A text encoder wraps a ``torch.nn.Module`` (it is not one itself, so that detectors can hold
one without registering the language model as a sub-module, i.e. without training it or
saving it in their checkpoints). Concrete encoders implement :meth:`TextEncoder.encode_batch`;
batching, ``no_grad``, eval mode, dtype, device and normalisation are handled here once.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (``cpu`` for an empty module)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def state_dict_digest(module: nn.Module) -> str:
    """SHA-256 over every tensor of ``module.state_dict()`` (names, dtypes, shapes, bytes).

    Two modules get the same digest exactly when their state dicts are equal bit for bit, so
    the digest names the weights (e.g. as a cache key). Hashing reads every parameter once
    (about a second for a ViT-B CLIP on CPU); callers memoise it.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class TextEncoder(abc.ABC):
    """Encodes strings into L2-normalised vectors of a fixed dimension.

    Subclasses provide :attr:`module` (the wrapped network), :attr:`device`, :attr:`dim`,
    :attr:`identity` and :meth:`encode_batch`.
    """

    @property
    @abc.abstractmethod
    def module(self) -> nn.Module:
        """The wrapped network (switched to eval mode while encoding)."""

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Device the network runs on."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Embedding dimension D."""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Stable string naming the weights (and tokenizer); different weights, different string.

        Used as part of cache keys, so it must not depend on the process or the device.
        """

    @abc.abstractmethod
    def encode_batch(self, texts: list[str]) -> torch.Tensor:
        """Raw (not necessarily normalised) embeddings of one batch.

        Called by :meth:`encode` under ``torch.no_grad()`` with :attr:`module` in eval mode.

        Returns:
            Tensor (len(texts), D) on any device, any floating dtype.
        """

    def check_texts(self, texts: Sequence[str], names: Sequence[str] | None = None) -> None:
        """Refuse texts this encoder cannot read faithfully (by default it reads any).

        :meth:`encode` calls it first; an encoder over a pruned token table (a model bundle's,
        see ``ovdet.text.known_tokens``) refuses texts that need a token it lacks.

        Args:
            texts: the strings to be encoded.
            names: what to call each text in an error (default the text), e.g. its class name.

        Raises:
            InputError: naming the texts refused.
        """
        del texts, names  # every text is readable

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Embeds ``texts`` in batches of ``batch_size``.

        Args:
            texts: N strings.
            batch_size: strings per forward pass.

        Returns:
            Tensor (N, D) float32 on CPU, each row L2-normalised.

        Raises:
            InputError: texts the encoder cannot read (:meth:`check_texts`).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.check_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        module = self.module
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                chunks = [
                    self.encode_batch(texts[start : start + batch_size]).float().cpu()
                    for start in range(0, len(texts), batch_size)
                ]
        finally:
            # a model lent to the encoder (e.g. a CLIP teacher being trained) keeps its mode
            module.train(was_training)
        return F.normalize(torch.cat(chunks), dim=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, device={self.device})"


def file_identity(path: str | os.PathLike) -> str:
    """``"<resolved path>|<size>|<mtime_ns>"``: names a weights file without reading it."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"
