"""ViLD-ensemble box predictor: a text head and a separate, distilled image head (METHODS.md §2)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.structures import Instances
from torch import nn

from ovdet.modeling.distill.ensemble import ViLDEnsembleHead

from .ov_box_predictor import OVFastRCNNOutputLayers

__all__ = ["OVEnsembleOutputLayers"]


def _input_size(input_shape: ShapeSpec | int) -> int:
    if isinstance(input_shape, int):
        return input_shape
    return input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)


class OVEnsembleOutputLayers(OVFastRCNNOutputLayers):
    """ViLD-ensemble: :class:`OVFastRCNNOutputLayers` plus a separate image-embedding head.

    Two heads read the box-head features ``x``:

    - the **text head**, the injected classifier (ViLD-text), trained by the classification
      loss exactly as in :class:`OVFastRCNNOutputLayers`;
    - the **image head** (:class:`~ovdet.modeling.distill.ViLDEnsembleHead`: a linear
      projection to the CLIP space), trained only by region distillation: :meth:`embed`
      returns *its* embedding, so ``roi_heads.region_embeddings`` and therefore
      :class:`~ovdet.modeling.distill.distillers.RegionDistiller` distil into it. The text
      head's embedding is :meth:`text_embed`.

    Inference (eval mode), for the C classes of the active vocabulary (class text embeddings
    ``t_c``)::

        p_text  = softmax([cos(e_text, t_1..t_C), cos(e_text, e_bg)] / tau)   (R, C + 1)
                  (sigmoid losses: sigmoid of the foreground logits, background column 0)
        p_image = softmax_c(cos(e_image, t_c) / tau_image)                   (R, C), no bg
        p_c     = p_text,c^lam     * p_image,c^(1-lam)   for base classes
        p_c     = p_text,c^(1-lam) * p_image,c^lam       for novel classes   (lam = 2/3)

    (:func:`~ovdet.modeling.distill.vild_ensemble_scores`); the background column is kept from
    the text head, and detectron2's ``fast_rcnn_inference`` does thresholding, NMS and top-k.
    In eval mode :meth:`forward` therefore returns these **probabilities** (R, C + 1) instead
    of logits (the image head needs the region features, which later stages do not see);
    :meth:`predict_probs` only splits them per image. In training :meth:`forward` returns the
    text head's logits as the parent does.

    Base vs novel (``is_base``, one flag per class of the test vocabulary):

    - from names: ``base_names`` (the classes trained with boxes, e.g.
      ``OV_COCO_BASE_NAMES``) are compared with the vocabulary's class names, which
      :class:`~ovdet.modeling.meta_arch.OVRCNN` passes through :meth:`set_class_names` when it
      is built with ``vocabulary=names`` and on every ``set_vocabulary``;
    - or explicitly: :meth:`set_vocabulary` ``(embeddings, is_base=mask)``, or the
      constructor's ``test_is_base``.

    A class whose name is unknown or not in ``base_names`` is treated as novel; changing the
    vocabulary without names (``set_vocabulary(embeddings)``) marks every class novel.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec | int,
        *,
        image_head: nn.Module | None = None,
        image_temperature: float = 0.01,
        image_input_size: int | None = None,
        base_names: Collection[str] | None = None,
        test_is_base: Sequence[bool] | torch.Tensor | None = None,
        **kwargs,
    ):
        """
        Args:
            input_shape: shape of the per-region features of the text head (box-head
                output, or its text part when ``image_input_size`` is set).
            image_head: a :class:`~ovdet.modeling.distill.ViLDEnsembleHead` (``embed``,
                ``image_probs``, and ``forward(x, text_probs, class_embeddings, is_base)``);
                default: ``ViLDEnsembleHead(in_features, D, temperature=image_temperature)``,
                lam = 2/3.
            image_temperature: tau_image of the default image head. ViLD uses 0.01, i.e. the
                inverse of OpenAI CLIP's logit scale (100); for another teacher use the inverse
                of *its* logit scale, the temperature its image-text similarities were trained
                with (``ovdet bench ov-shapes`` does so for its small CLIP).
            image_input_size: number of trailing feature columns that belong to a separate
                image box head (:class:`~ovdet.modeling.roi_heads.ViLDEnsembleBoxHead`);
                None: the image head reads the same features as the text head.
            base_names: names of the base classes, compared with the vocabulary names.
            test_is_base: (C_test,) flags for the test vocabulary the predictor is built with
                (default: every class novel until names or flags are given).
            kwargs: arguments of :class:`OVFastRCNNOutputLayers` (``box2box_transform``,
                ``classifier``, ``loss_type``, test thresholds, ...).
        """
        super().__init__(input_shape, **kwargs)
        embed_dim = int(self.get_vocabulary().shape[1])
        self.text_input_size = _input_size(input_shape)
        if image_input_size is not None and int(image_input_size) <= 0:
            raise ValueError(
                f"OVEnsembleOutputLayers: image_input_size must be positive, got {image_input_size}"
            )
        self.image_input_size = None if image_input_size is None else int(image_input_size)
        if image_head is None:
            if not (math.isfinite(image_temperature) and image_temperature > 0):
                raise ValueError(
                    "OVEnsembleOutputLayers: image_temperature must be a positive number, got "
                    f"{image_temperature}"
                )
            image_head = ViLDEnsembleHead(
                self.image_input_size or self.text_input_size,
                embed_dim,
                temperature=float(image_temperature),
            )
        for name in ("embed", "image_probs"):
            if not callable(getattr(image_head, name, None)):
                raise TypeError(
                    f"OVEnsembleOutputLayers: image_head {type(image_head).__name__} has no "
                    f"{name}(); use ovdet.modeling.distill.ViLDEnsembleHead"
                )
        self.image_head = image_head
        if base_names is not None and isinstance(base_names, str):
            raise TypeError(
                f"OVEnsembleOutputLayers: base_names must be a collection of names, got the "
                f"string {base_names!r}"
            )
        self.base_names = frozenset(base_names) if base_names is not None else frozenset()
        self.register_buffer(
            "_is_base", self._resolve_mask(None, test_is_base, "test_is_base"), persistent=False
        )

    # ------------------------------------------------------------------ base / novel
    def _resolve_mask(
        self,
        names: Sequence[str] | None,
        is_base: Sequence[bool] | torch.Tensor | None,
        where: str,
    ) -> torch.Tensor:
        num = int(self.get_vocabulary().shape[0])
        if is_base is not None:
            mask = torch.as_tensor(is_base)
            if mask.dtype != torch.bool or mask.shape != (num,):
                raise ValueError(
                    f"OVEnsembleOutputLayers: {where} must be a ({num},) bool mask (one flag per "
                    f"class of the test vocabulary), got dtype {mask.dtype} and shape "
                    f"{tuple(mask.shape)}"
                )
            return mask.clone()
        if names is not None:
            names = list(names)
            if len(names) != num:
                raise ValueError(
                    f"OVEnsembleOutputLayers: {len(names)} class names for a test vocabulary of "
                    f"{num} classes"
                )
            return torch.tensor([n in self.base_names for n in names], dtype=torch.bool)
        return torch.zeros(num, dtype=torch.bool)

    @property
    def is_base(self) -> torch.Tensor:
        """(C_test,) bool: True for the base classes of the test vocabulary (a copy)."""
        return self._is_base.clone()

    def set_vocabulary(
        self,
        embeddings: torch.Tensor,
        names: Sequence[str] | None = None,
        is_base: Sequence[bool] | torch.Tensor | None = None,
    ) -> None:
        """Set the test vocabulary and its base/novel flags.

        Args:
            embeddings: (C, D) class text embeddings.
            names: optional C class names, compared with ``base_names``.
            is_base: optional (C,) bool flags (take precedence over ``names``).
                Neither given: every class is novel.
        """
        super().set_vocabulary(embeddings)
        self._is_base = self._resolve_mask(names, is_base, "is_base").to(self._is_base.device)

    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Names of the current test vocabulary (None: unknown, every class novel)."""
        self._is_base = self._resolve_mask(names, None, "names").to(self._is_base.device)

    # ------------------------------------------------------------------ heads
    def split_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, ...) box-head output -> (text-head features, image-head features)."""
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        expected = self.text_input_size + (self.image_input_size or 0)
        if x.shape[1] != expected:
            raise ValueError(
                f"OVEnsembleOutputLayers: region features have {x.shape[1]} columns, expected "
                f"{expected} (text head {self.text_input_size}"
                + (f" + image head {self.image_input_size}" if self.image_input_size else "")
                + "); does the box head match the predictor's input_shape / image_input_size?"
            )
        if self.image_input_size is None:
            return x, x
        return x[:, : self.text_input_size], x[:, self.text_input_size :]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(R, ...) region features -> (R, D) normalised image-head embeddings (distilled)."""
        return self.image_head.embed(self.split_features(x)[1])

    def text_embed(self, x: torch.Tensor) -> torch.Tensor:
        """(R, ...) region features -> (R, D) normalised text-head embeddings."""
        return self.classifier.embed(self.split_features(x)[0])

    def text_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(R, C + 1) text-head logits -> (R, C + 1) probabilities, background last."""
        if self.loss_type == "softmax":
            return F.softmax(logits, dim=-1)
        fg = torch.sigmoid(logits[:, :-1] + self.cls_bias)
        return torch.cat([fg, fg.new_zeros((fg.shape[0], 1))], dim=1)

    def ensemble_probs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """ViLD-ensemble class probabilities.

        Args:
            x: (R, in) image-head features (the image part of the box-head output).
            logits: (R, C + 1) text-head logits of the active vocabulary.

        Returns:
            (R, C + 1): ensembled foreground scores, text-head background probability last.
        """
        text = self.text_probs(logits)
        classes = self.get_vocabulary().to(device=x.device, dtype=x.dtype)
        if classes.shape[0] != logits.shape[1] - 1:
            raise RuntimeError(
                f"OVEnsembleOutputLayers: {logits.shape[1] - 1} text-head classes but a test "
                f"vocabulary of {classes.shape[0]}; ensembling is defined in eval mode"
            )
        fg = self.image_head(x, text[:, :-1], classes, self._is_base)
        return torch.cat([fg, text[:, -1:]], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (R, ...) per-region features.

        Returns:
            training: (R, C_train + 1) text-head logits and (R, 4) box deltas;
            eval: (R, C + 1) ensembled probabilities (background last) and (R, 4) deltas.
        """
        text_x, image_x = self.split_features(x)
        logits, deltas = self.classifier(text_x), self.bbox_pred(text_x)
        if self.training:
            return logits, deltas
        return self.ensemble_probs(image_x, logits), deltas

    def predict_probs(
        self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]
    ) -> list[torch.Tensor]:
        """Per image (R_i, C + 1) ensembled probabilities (``forward``'s eval output, split)."""
        probs, _ = predictions
        return list(probs.split([len(p) for p in proposals], dim=0))

    def extra_repr(self) -> str:
        return (
            f"base_names={len(self.base_names)}, num_base_test={int(self._is_base.sum())}, "
            f"image_input_size={self.image_input_size}"
        )
