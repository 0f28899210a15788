"""ViLD-ensemble box predictor: the text head plus a separate, distilled image head."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.structures import Instances
from torch import nn

from ovdet.modeling.roi_heads import OVFastRCNNOutputLayers

from .heads import VILD_LAMBDA, ViLDEnsembleHead

__all__ = ["EnsembleLogits", "OVEnsembleOutputLayers"]


def _input_size(input_shape: ShapeSpec | int) -> int:
    if isinstance(input_shape, int):
        return input_shape
    return input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)


class EnsembleLogits(NamedTuple):
    """The class logits of both heads for R regions over the active vocabulary of C classes.

    Attributes:
        text: (R, C + 1) text-head logits, background last (trained by the classification
            loss).
        image: (R, C) image-head logits ``cos(e_image, t_c) / tau_image`` (no background).
    """

    text: torch.Tensor
    image: torch.Tensor


class OVEnsembleOutputLayers(OVFastRCNNOutputLayers):
    """ViLD-ensemble: :class:`OVFastRCNNOutputLayers` plus a separate image head.

    The box head is :class:`~ovdet.methods.vild_ensemble.ViLDEnsembleBoxHead`: its output is
    the text box head's features followed by the image box head's (``image_input_size``
    trailing columns). Two heads read them:

    - the **text head**, the injected classifier (ViLD-text) and the class-agnostic box
      regression, trained by the detector's losses exactly as in
      :class:`OVFastRCNNOutputLayers`;
    - the **image head** (:class:`~ovdet.methods.vild_ensemble.ViLDEnsembleHead`: a linear
      projection to the teacher's space), trained only by region distillation
      (:class:`~ovdet.methods.vild_ensemble.ViLDEnsembleROIHeads` distils into it).

    :meth:`forward` returns ``(EnsembleLogits(text, image), deltas)`` in training and in
    eval mode alike; the losses use the text logits, and :meth:`predict_probs` combines the
    two heads (docs/methods.md#vild-ensemble) for the C classes of the active vocabulary::

        p_text  = cls_loss.probs(text logits)              (R, C + 1), background last
        p_image = softmax_c(cos(e_image, t_c) / tau_image)  (R, C), no background
        p_c     = p_text,c^lam     * p_image,c^(1-lam)   for base classes
        p_c     = p_text,c^(1-lam) * p_image,c^lam       for novel classes   (lam = 2/3)

    and keeps the text head's background column; detectron2's ``fast_rcnn_inference`` then
    does thresholding, NMS and top-k.

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
        image_input_size: int,
        image_head: nn.Module | None = None,
        image_temperature: float = 0.01,
        lam: float = VILD_LAMBDA,
        base_names: Collection[str] | None = None,
        test_is_base: Sequence[bool] | torch.Tensor | None = None,
        **kwargs,
    ):
        """
        Args:
            input_shape: shape of the text box head's per-region features.
            image_input_size: number of trailing feature columns that come from the image
                box head.
            image_head: a :class:`ViLDEnsembleHead`; default
                ``ViLDEnsembleHead(image_input_size, D, temperature=image_temperature,
                lam=lam)``.
            image_temperature: tau_image of the default image head. ViLD uses 0.01, the
                inverse of OpenAI CLIP's logit scale (100); for another teacher use the inverse
                of *its* logit scale (``ovdet.methods.vild_ensemble.teacher_temperature``).
            lam: lambda of the default image head's inference rule (ViLD: 2/3).
            base_names: names of the base classes, compared with the vocabulary names.
            test_is_base: (C_test,) flags for the test vocabulary the predictor is built with
                (default: every class novel until names or flags are given).
            kwargs: arguments of :class:`OVFastRCNNOutputLayers` (``box2box_transform``,
                ``classifier``, ``cls_loss``, test thresholds, ...).
        """
        super().__init__(input_shape, **kwargs)
        embed_dim = int(self.get_vocabulary().shape[1])
        self.text_input_size = _input_size(input_shape)
        if int(image_input_size) <= 0:
            raise ValueError(
                f"OVEnsembleOutputLayers: image_input_size must be positive, got {image_input_size}"
            )
        self.image_input_size = int(image_input_size)
        if image_head is None:
            image_head = ViLDEnsembleHead(
                self.image_input_size, embed_dim, temperature=float(image_temperature), lam=lam
            )
        if not isinstance(image_head, ViLDEnsembleHead):
            raise TypeError(
                f"OVEnsembleOutputLayers: image_head must be a ViLDEnsembleHead (or a subclass), "
                f"got {type(image_head).__name__}"
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
        expected = self.text_input_size + self.image_input_size
        if x.shape[1] != expected:
            raise ValueError(
                f"OVEnsembleOutputLayers: region features have {x.shape[1]} columns, expected "
                f"{expected} (text head {self.text_input_size} + image head "
                f"{self.image_input_size}); is the box head a ViLDEnsembleBoxHead matching "
                "the predictor's input_shape / image_input_size?"
            )
        return x[:, : self.text_input_size], x[:, self.text_input_size :]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(R, ...) box-head output -> (R, D) normalised text-head embeddings."""
        return self.classifier.embed(self.split_features(x)[0])

    def image_embed(self, image_features: torch.Tensor) -> torch.Tensor:
        """(R, image_input_size) image box head features -> (R, D) normalised image-head
        embeddings (the distilled ones)."""
        return self.image_head.embed(image_features)

    def forward(self, x: torch.Tensor) -> tuple[EnsembleLogits, torch.Tensor]:
        """
        Args:
            x: (R, ...) per-region box-head output (text then image features).

        Returns:
            ``EnsembleLogits`` of both heads over the active vocabulary (training: the
            training vocabulary, eval: the test vocabulary) and (R, 4) class-agnostic deltas.
        """
        text_x, image_x = self.split_features(x)
        classes = self.classifier.active_embeddings()
        logits = EnsembleLogits(self.classifier(text_x), self.image_head.logits(image_x, classes))
        return logits, self.bbox_pred(text_x)

    def losses(
        self, predictions: tuple[EnsembleLogits, torch.Tensor], proposals: list[Instances]
    ) -> dict[str, torch.Tensor]:
        """The text head's classification and box losses (the image head learns only from
        distillation)."""
        logits, deltas = predictions
        return super().losses((logits.text, deltas), proposals)

    def ensemble_probs(self, logits: EnsembleLogits) -> torch.Tensor:
        """(R, C + 1) ensembled class probabilities, the text head's background last."""
        num = int(self._is_base.shape[0])
        if logits.image.shape[1] != num:
            raise RuntimeError(
                f"OVEnsembleOutputLayers: {logits.image.shape[1]} classes scored but a test "
                f"vocabulary of {num}; ensembling is defined in eval mode"
            )
        text = self.cls_loss.probs(logits.text)
        fg = self.image_head.combine(text[:, :-1], logits.image, self._is_base)
        return torch.cat([fg, text[:, -1:]], dim=1)

    def predict_probs(
        self, predictions: tuple[EnsembleLogits, torch.Tensor], proposals: list[Instances]
    ) -> list[torch.Tensor]:
        """Per image (R_i, C + 1) ensembled probabilities (see the class docstring)."""
        logits, _ = predictions
        return list(self.ensemble_probs(logits).split([len(p) for p in proposals], dim=0))

    def extra_repr(self) -> str:
        return (
            f"base_names={len(self.base_names)}, num_base_test={int(self._is_base.sum())}, "
            f"image_input_size={self.image_input_size}"
        )
