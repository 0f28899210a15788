"""Open-vocabulary R-CNN: GeneralizedRCNN whose classes are a run-time text vocabulary."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from detectron2.config import configurable
from detectron2.modeling.meta_arch import META_ARCH_REGISTRY, GeneralizedRCNN

if TYPE_CHECKING:
    from ovdet.text import TextEncoder

__all__ = ["OVRCNN"]


def _validate_names(names: Sequence[str], where: str) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{where}: expected a list of class names, got the string {names!r}")
    names = list(names)
    if not names:
        raise ValueError(f"{where}: the vocabulary is empty; pass at least one class name")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                f"{where}: class name at index {i} is {name!r}; names must be non-empty strings"
            )
        if name in seen:
            raise ValueError(
                f"{where}: duplicate class name {name!r} at indices {seen[name]} "
                f"and {i}; class names must be unique"
            )
        seen[name] = i
    return names


@META_ARCH_REGISTRY.register()
class OVRCNN(GeneralizedRCNN):
    """Two-stage open-vocabulary detector (ViLD-style) with a run-time vocabulary.

    Model I/O is detectron2's: ``list[dict]`` in, ``[{"instances": Instances}]`` out, where
    ``pred_classes`` index :attr:`vocabulary`. The ROI heads must be
    :class:`OVStandardROIHeads` / :class:`OVRes5ROIHeads` (or expose their public
    ``set_vocabulary`` / ``get_vocabulary``).

    The vocabulary only affects eval mode: training always uses the classifier's training
    embeddings (its labels are the dataset's contiguous ids).
    """

    @configurable
    def __init__(
        self,
        *,
        text_encoder: TextEncoder | None = None,
        vocabulary: Sequence[str] | None = None,
        templates: Sequence[str] = ("a {}.",),
        vocabulary_cache_size: int = 8,
        **kwargs,
    ):
        """
        Args:
            text_encoder: an ``ovdet.text.TextEncoder`` (``dim``, ``identity``,
                ``encode(list[str])``) used by :meth:`set_vocabulary` with names. Not an
                ``nn.Module``: its weights are not part of the detector's state_dict.
            vocabulary: names of the rows of the classifier's current test embeddings (must
                match their number); default ``["class_0", ...]``. To change the vocabulary
                use :meth:`set_vocabulary`.
            templates: prompt templates for names, each containing ``{}``.
            vocabulary_cache_size: how many encoded vocabularies to keep (LRU, per model).
            kwargs: arguments of :class:`GeneralizedRCNN` (``backbone``,
                ``proposal_generator``, ``roi_heads``, ``pixel_mean``, ``pixel_std``,
                ``input_format``, ``vis_period``).
        """
        super().__init__(**kwargs)
        for name in ("set_vocabulary", "get_vocabulary"):
            if not callable(getattr(self.roi_heads, name, None)):
                raise TypeError(
                    f"OVRCNN: roi_heads {type(self.roi_heads).__name__} has no {name}(); use "
                    "OVStandardROIHeads or OVRes5ROIHeads"
                )
        templates = tuple(templates)
        if not templates:
            raise ValueError("OVRCNN: templates is empty; pass e.g. ['a {}.']")
        for i, t in enumerate(templates):
            if not isinstance(t, str) or t.count("{}") != 1:
                raise ValueError(
                    f"OVRCNN: template at index {i} ({t!r}) must contain '{{}}' exactly once"
                )
        if vocabulary_cache_size < 1:
            raise ValueError(
                f"OVRCNN: vocabulary_cache_size must be >= 1, got {vocabulary_cache_size}"
            )
        self.templates = templates
        self.vocabulary_cache_size = int(vocabulary_cache_size)
        self._vocabulary_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.text_encoder = text_encoder
        embed_dim = self._embed_dim()
        if text_encoder is not None and int(text_encoder.dim) != embed_dim:
            raise ValueError(
                f"OVRCNN: text_encoder.dim={text_encoder.dim} ({text_encoder.identity}) but the "
                f"classifier embeds into {embed_dim} dims; use the text encoder the class "
                "embeddings were made with"
            )
        num_test = int(self.roi_heads.get_vocabulary().shape[0])
        if vocabulary is None:
            self._vocabulary = [f"class_{i}" for i in range(num_test)]
        else:
            names = _validate_names(vocabulary, "OVRCNN(vocabulary=...)")
            if len(names) != num_test:
                raise ValueError(
                    f"OVRCNN: vocabulary has {len(names)} names but the classifier's test "
                    f"embeddings have {num_test} rows; call set_vocabulary(names) to encode a "
                    "new vocabulary"
                )
            self._vocabulary = names

    def _embed_dim(self) -> int:
        return int(self.roi_heads.get_vocabulary().shape[1])

    @property
    def vocabulary(self) -> list[str]:
        """Class names of the inference vocabulary; ``pred_classes`` index this list."""
        return list(self._vocabulary)

    def set_vocabulary(
        self,
        names: Sequence[str] | torch.Tensor,
        names_for_embeddings: Sequence[str] | None = None,
    ) -> None:
        """Change the inference vocabulary at run time (any size; no rebuild).

        Args:
            names: C class names, encoded by ``ovdet.text.build_class_embeddings`` with
                ``text_encoder`` and :attr:`templates` (memoised per model, LRU keyed by
                encoder identity, names and templates), or a (C, D) tensor of class text
                embeddings.
            names_for_embeddings: C names of the rows when ``names`` is a tensor
                (default ``"class_0"``, ...).
        """
        if isinstance(names, torch.Tensor):
            emb = names
            if emb.dim() != 2:
                raise ValueError(
                    f"set_vocabulary: embeddings must have shape (C, D), got {tuple(emb.shape)}"
                )
            if names_for_embeddings is None:
                vocab = [f"class_{i}" for i in range(emb.shape[0])]
            else:
                vocab = _validate_names(
                    names_for_embeddings, "set_vocabulary(names_for_embeddings)"
                )
                if len(vocab) != emb.shape[0]:
                    raise ValueError(
                        f"set_vocabulary: {len(vocab)} names_for_embeddings for "
                        f"{emb.shape[0]} embedding rows"
                    )
            self.roi_heads.set_vocabulary(emb)
            self._vocabulary = vocab
            return

        if names_for_embeddings is not None:
            raise ValueError(
                "set_vocabulary: names_for_embeddings is only used with a tensor "
                "of embeddings; pass the names as the first argument"
            )
        vocab = _validate_names(names, "set_vocabulary(names)")
        if self.text_encoder is None:
            raise ValueError(
                "set_vocabulary: class names need a text encoder; pass embeddings (a (C, D) "
                "tensor) or build the model with text_encoder=..."
            )
        self.roi_heads.set_vocabulary(self._encode(vocab))
        self._vocabulary = vocab

    def _encode(self, names: list[str]) -> torch.Tensor:
        key = (str(self.text_encoder.identity), tuple(names), self.templates)
        cached = self._vocabulary_cache.get(key)
        if cached is None:
            # imported here: ovdet.text is only needed when names are encoded
            from ovdet.text import build_class_embeddings

            cached = build_class_embeddings(self.text_encoder, names, list(self.templates))
            self._vocabulary_cache[key] = cached
            while len(self._vocabulary_cache) > self.vocabulary_cache_size:
                self._vocabulary_cache.popitem(last=False)
        else:
            self._vocabulary_cache.move_to_end(key)
        return cached

    def clear_vocabulary_cache(self) -> None:
        """Forget memoised vocabulary embeddings."""
        self._vocabulary_cache.clear()
