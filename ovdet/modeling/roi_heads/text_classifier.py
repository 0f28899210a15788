"""Region classifier that scores region embeddings against class text embeddings (ViLD-text)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from torch import nn

from ovdet.utils.errors import InputError

__all__ = ["TextEmbeddingClassifier"]


def _input_size(input_shape: ShapeSpec | int) -> int:
    if isinstance(input_shape, int):
        return input_shape
    return input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)


def _check_embeddings(emb: torch.Tensor, dim: int, what: str) -> torch.Tensor:
    """Validate a (C, D) embedding matrix and return it float32, L2-normalised, detached."""
    if not isinstance(emb, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor of shape (C, {dim}), got {type(emb)}")
    if emb.dim() != 2:
        raise ValueError(f"{what}: expected shape (C, {dim}), got {tuple(emb.shape)}")
    if emb.shape[1] != dim:
        raise ValueError(
            f"{what}: embedding dim mismatch: expected {dim} (the classifier's embed_dim), "
            f"got {emb.shape[1]} (shape {tuple(emb.shape)}); use text embeddings from the "
            "same text encoder the detector was trained with"
        )
    if emb.shape[0] == 0:
        raise ValueError(f"{what}: the vocabulary is empty (shape {tuple(emb.shape)})")
    if not torch.isfinite(emb).all():
        raise ValueError(f"{what}: embeddings contain NaN or Inf")
    return F.normalize(emb.detach().float(), dim=1)


class TextEmbeddingClassifier(nn.Module):
    """ViLD-text classifier: cosine similarity between region and class text embeddings.

    A linear projection maps region features to D-dim embeddings ``e`` (L2-normalised).
    Logits over the active vocabulary of C classes are ``cos(e, t_c) / tau``; one background
    column is appended last, ``cos(e, e_bg) / tau`` with ``e_bg`` a learned D-vector
    (normalised before use). The paper writes the background column first; ovdet puts it
    last to follow detectron2's label convention (background label = C).

    Two vocabularies are held: the train vocabulary (used in ``training`` mode) and the test
    vocabulary (used in ``eval`` mode, defaults to the train one). :meth:`set_vocabulary`
    replaces the test vocabulary with any number of classes without rebuilding the model.

    Vocabulary buffers are registered with ``persistent=False``: they are NOT part of the
    ``state_dict``, so a checkpoint trained with one vocabulary size loads into a model built
    with another. The vocabulary is data supplied by the config (or :meth:`set_vocabulary`),
    never by the checkpoint.
    """

    @configurable
    def __init__(
        self,
        *,
        input_shape: ShapeSpec | int,
        train_embeddings: torch.Tensor,
        embed_dim: int | None = None,
        test_embeddings: torch.Tensor | None = None,
        temperature: float = 0.01,
    ):
        """
        Args:
            input_shape: shape of the per-region features (flattened size is used).
            train_embeddings: (C_train, D) class text embeddings of the training vocabulary,
                row c = class c (normalised here).
            embed_dim: D; inferred from ``train_embeddings`` when None, else checked.
            test_embeddings: (C_test, D) embeddings used in eval mode; defaults to the train
                vocabulary.
            temperature: tau, logits = cos / tau.
        """
        super().__init__()
        if not isinstance(train_embeddings, torch.Tensor):
            got = "None" if train_embeddings is None else type(train_embeddings).__name__
            raise InputError(
                f"TextEmbeddingClassifier: train_embeddings is {got}; the config must give the "
                "(C_train, D) class text embeddings of the training vocabulary "
                "(model.roi_heads.box_predictor.classifier.train_embeddings), e.g. "
                "L(load_class_embeddings)(path=...) with a file made by `ovdet embed-text`"
            )
        if embed_dim is None:
            embed_dim = int(train_embeddings.shape[-1]) if train_embeddings.dim() == 2 else -1
        if embed_dim <= 0:
            raise ValueError(
                "TextEmbeddingClassifier: train_embeddings must have shape (C, D), "
                f"got {tuple(train_embeddings.shape)}"
            )
        if temperature <= 0:
            raise ValueError(f"TextEmbeddingClassifier: temperature must be > 0, got {temperature}")
        self.embed_dim = embed_dim
        self.temperature = float(temperature)
        self.linear = nn.Linear(_input_size(input_shape), embed_dim)
        nn.init.normal_(self.linear.weight, std=0.01)
        nn.init.constant_(self.linear.bias, 0.0)
        self.bg_embedding = nn.Parameter(torch.randn(embed_dim) / embed_dim**0.5)

        train = _check_embeddings(train_embeddings, embed_dim, "train_embeddings")
        test = (
            train.clone()
            if test_embeddings is None
            else _check_embeddings(test_embeddings, embed_dim, "test_embeddings")
        )
        self.register_buffer("train_embeddings", train, persistent=False)
        self.register_buffer("test_embeddings", test, persistent=False)

    @classmethod
    def from_config(
        cls, cfg, input_shape: ShapeSpec, *, train_embeddings: torch.Tensor, **kwargs: Any
    ) -> dict[str, Any]:
        """Build from a yacs config: embeddings are passed explicitly (they are data)."""
        del cfg
        return {"input_shape": input_shape, "train_embeddings": train_embeddings, **kwargs}

    @property
    def num_classes(self) -> int:
        """Number of classes of the active vocabulary (train in training mode, else test)."""
        return int(self.active_embeddings().shape[0])

    @property
    def num_train_classes(self) -> int:
        """Number of classes of the training vocabulary (labels are in [0, C_train])."""
        return int(self.train_embeddings.shape[0])

    def active_embeddings(self) -> torch.Tensor:
        """(C, D) normalised embeddings scored now: the training vocabulary in training mode,
        the test vocabulary in eval mode (not a copy: do not modify)."""
        return self.train_embeddings if self.training else self.test_embeddings

    def set_vocabulary(self, embeddings: torch.Tensor) -> None:
        """Replace the test (eval-mode) vocabulary.

        Args:
            embeddings: (C, D) class text embeddings, any C >= 1; rows are L2-normalised here.
        """
        emb = _check_embeddings(embeddings, self.embed_dim, "set_vocabulary(embeddings)")
        self.test_embeddings = emb.to(self.linear.weight.device)

    def get_vocabulary(self) -> torch.Tensor:
        """(C_test, D) normalised test-vocabulary embeddings (a copy)."""
        return self.test_embeddings.clone()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Region embeddings.

        Args:
            x: (R, ...) per-region features, flattened to (R, in).

        Returns:
            (R, D) L2-normalised region embeddings.
        """
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        return F.normalize(self.linear(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classification logits.

        Args:
            x: (R, ...) per-region features.

        Returns:
            (R, C + 1) logits: columns [0, C) = cos(e, t_c) / tau for the active vocabulary,
            column C = background cos(e, e_bg) / tau.
        """
        e = self.embed(x)
        classes = self.active_embeddings().to(dtype=e.dtype)
        bg = F.normalize(self.bg_embedding, dim=0).to(dtype=e.dtype)
        weights = torch.cat([classes, bg[None, :]], dim=0)
        return e @ weights.t() / self.temperature

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, temperature={self.temperature}, "
            f"num_train_classes={self.num_train_classes}, "
            f"num_test_classes={int(self.test_embeddings.shape[0])}"
        )
