"""Open-vocabulary R-CNN: GeneralizedRCNN whose classes are a run-time text vocabulary."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from detectron2.config import configurable
from detectron2.modeling.meta_arch import META_ARCH_REGISTRY, GeneralizedRCNN
from torch import nn

from ovdet.modeling.distill import DistillContext

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


def _as_module_container(
    distillers: Sequence[nn.Module] | Mapping[str, nn.Module] | None,
) -> nn.ModuleList | nn.ModuleDict:
    """list of distillers -> ``nn.ModuleList``; name -> distiller mapping -> ``nn.ModuleDict``."""
    if distillers is None:
        distillers = ()
    is_mapping = isinstance(distillers, (Mapping, nn.ModuleDict))
    if not is_mapping and isinstance(distillers, (nn.Module, str, bytes)):
        if not isinstance(distillers, nn.ModuleList):
            raise TypeError(
                "OVRCNN(distillers=...): expected a list or a name -> module mapping of "
                f"distillers, got a single {type(distillers).__name__}; wrap it in a list"
            )
    items = list(distillers.items()) if is_mapping else list(enumerate(distillers))
    for key, module in items:
        if not isinstance(module, nn.Module):
            where = f"{key!r}" if is_mapping else f"at index {key}"
            raise TypeError(
                f"OVRCNN(distillers=...): distiller {where} is a {type(module).__name__}, not "
                "an nn.Module"
            )
    if is_mapping:
        return nn.ModuleDict({str(k): m for k, m in items})
    return nn.ModuleList([m for _, m in items])


def _named(container: nn.ModuleList | nn.ModuleDict) -> list[tuple[str, nn.Module]]:
    if isinstance(container, nn.ModuleDict):
        return [(repr(k), m) for k, m in container.items()]
    return [(f"at index {i}", m) for i, m in enumerate(container)]


def _merge_losses(
    losses: dict[str, torch.Tensor], new: object, name: str, distiller: nn.Module
) -> None:
    where = f"OVRCNN: distiller {name} ({type(distiller).__name__})"
    if not isinstance(new, Mapping):
        raise TypeError(f"{where} returned a {type(new).__name__}; expected dict[str, Tensor]")
    for key, value in new.items():
        if not isinstance(key, str) or not key.startswith("loss_"):
            raise ValueError(
                f"{where} returned the key {key!r}; loss terms must be named 'loss_*' "
                "(detectron2 sums every entry of the loss dict)"
            )
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"{where}: {key!r} must be a scalar tensor, got {value!r}")
        if key in losses:
            raise ValueError(
                f"{where} returned {key!r}, which an earlier loss already produced; give the "
                "distillers distinct objectives (two copies of one objective collide)"
            )
        losses[key] = value


@META_ARCH_REGISTRY.register()
class OVRCNN(GeneralizedRCNN):
    """Two-stage open-vocabulary detector (ViLD-style) with a run-time vocabulary.

    Model I/O is detectron2's: ``list[dict]`` in, ``[{"instances": Instances}]`` out, where
    ``pred_classes`` index :attr:`vocabulary`. The ROI heads must be
    :class:`OVStandardROIHeads` / :class:`OVRes5ROIHeads` (or expose their public
    ``set_vocabulary`` / ``get_vocabulary``).

    The vocabulary only affects eval mode: training always uses the classifier's training
    embeddings (its labels are the dataset's contiguous ids).

    Distillation: ``distillers`` are training objectives beyond the detector's own losses
    (e.g. :class:`~ovdet.modeling.distill.RegionDistiller` for ViLD-image / RKD,
    :class:`~ovdet.modeling.distill.CaptionDistiller` for HierKD). In training,
    after the RPN and ROI-head losses, each distiller is called with one
    :class:`~ovdet.modeling.distill.DistillContext` (the batch, the preprocessed
    images, the backbone features, the RPN proposals and the model) and returns a
    ``dict[str, Tensor]`` of scalar ``loss_*`` terms, merged into the loss dict; a key
    produced twice is an error. Distillers never run in eval mode.

    Class names: the ROI heads are told the names of the inference vocabulary
    (``roi_heads.set_class_names(names | None)``) at construction (when ``vocabulary`` is
    given) and on every :meth:`set_vocabulary`; ``None`` when the rows have no names. A box
    predictor that treats base and novel classes differently (ViLD-ensemble,
    :class:`~ovdet.methods.vild_ensemble.OVEnsembleOutputLayers`) reads them.
    """

    @configurable
    def __init__(
        self,
        *,
        text_encoder: TextEncoder | None = None,
        vocabulary: Sequence[str] | None = None,
        templates: Sequence[str] = ("a {}.",),
        vocabulary_cache_size: int = 8,
        distillers: Sequence[nn.Module] | Mapping[str, nn.Module] = (),
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
            distillers: training-only objectives, a list (kept as ``nn.ModuleList``) or a
                name -> module mapping (``nn.ModuleDict``). Each is called as
                ``distiller(context: DistillContext) -> dict[str, Tensor]`` of ``loss_*``
                terms. Their parameters (e.g. the HierKD projection) are part of the model.
            kwargs: arguments of :class:`GeneralizedRCNN` (``backbone``,
                ``proposal_generator``, ``roi_heads``, ``pixel_mean``, ``pixel_std``,
                ``input_format``, ``vis_period``).
        """
        super().__init__(**kwargs)
        for name in ("set_vocabulary", "get_vocabulary", "set_class_names"):
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
            self.roi_heads.set_class_names(names)
        self.distillers = _as_module_container(distillers)
        # the training step's ROI-head inputs, recorded for the distillers (see forward)
        self._step: dict | None = None
        self.roi_heads.register_forward_pre_hook(self._record_roi_inputs)

    def _record_roi_inputs(self, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook of ``roi_heads``: keep what the distillers need of this step."""
        if self._step is not None:
            images, features, proposals = args[:3]
            self._step.update(images=images, features=features, proposals=proposals)

    def forward(self, batched_inputs: list[dict]) -> list[dict] | dict[str, torch.Tensor]:
        """detectron2 model call; training adds the distillers' losses.

        The detector's own step is :class:`GeneralizedRCNN`'s (preprocess, backbone, RPN,
        ROI heads). A forward pre-hook on ``roi_heads`` records its inputs -- the
        preprocessed images, the backbone features and the RPN proposals -- and each
        distiller is then called with them in one :class:`DistillContext`.

        Args:
            batched_inputs: detectron2 input dicts (``image``, ``instances`` in training,
                ``height``/``width``, plus the documented extra keys the distillers read, such
                as ``teacher_proposals``, ``teacher_embeddings``, ``captions``).

        Returns:
            training: dict of scalar losses (ROI heads, RPN, then each distiller's);
            eval: ``[{"instances": Instances}]`` per image.
        """
        if not self.training or not len(self.distillers):
            return super().forward(batched_inputs)
        self._step = {}
        try:
            losses = super().forward(batched_inputs)
            step = self._step
        finally:
            self._step = None
        if "features" not in step:
            raise RuntimeError(
                "OVRCNN: the ROI heads were not called during the training step, so the "
                "distillers have no features to read"
            )
        context = DistillContext(batched_inputs=batched_inputs, model=self, **step)
        for name, distiller in _named(self.distillers):
            _merge_losses(losses, distiller(context), name, distiller)
        return losses

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
            self.roi_heads.set_class_names(None if names_for_embeddings is None else vocab)
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
        self.roi_heads.set_class_names(vocab)

    def _encode(self, names: list[str]) -> torch.Tensor:
        # everything the embeddings depend on: the encoder's weights, the names, the templates
        # (as a tuple, also when ``templates`` was reassigned a list)
        key = (str(self.text_encoder.identity), tuple(names), tuple(self.templates))
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
