"""Distillers: connect the distillation objectives to a detector's training step.

An objective (:class:`~ovdet.modeling.distill.ViLDImageDistillation`,
:class:`~ovdet.modeling.distill.RKDDistillation`,
:class:`~ovdet.modeling.distill.HierKDGlobalDistillation`) works on tensors. A *distiller* reads
what the objective needs from one training step of an
:class:`~ovdet.modeling.meta_arch.OVRCNN` — the input dicts, the backbone features, the ROI
heads — and returns the objective's ``loss_*`` dict. The model calls every distiller listed in
its ``distillers`` argument with one :class:`DistillContext`::

    losses.update(distiller(context))   # dict[str, Tensor], keys "loss_*"

Per-image inputs read here (documented keys of the detectron2 input dicts, see
:class:`~ovdet.data.mapper.OVDatasetMapper`):

``teacher_proposals``
    :class:`~detectron2.structures.Boxes` or a (M, 4) tensor, XYXY in the pixels of the
    input's ``image`` (the augmented, network-input image, as the mapper delivers them).
``teacher_embeddings``
    (M, D) tensor, row i = the teacher (CLIP) embedding of proposal i (offline targets, e.g.
    from :class:`~ovdet.data.teacher_mapper.TeacherTargetsMapper`).
``captions``
    ``list[str]`` or ``str``: captions of the image.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any

import torch
from detectron2.structures import Boxes, ImageList, Instances
from torch import nn

if TYPE_CHECKING:
    from ovdet.text import TextEncoder

__all__ = ["CaptionDistiller", "DistillContext", "RegionDistiller"]

CHOOSE_MODES = ("random", "first")


@dataclass
class DistillContext:
    """What a distiller sees of one training step of an OV R-CNN.

    Attributes:
        batched_inputs: the N input dicts of the step (detectron2 format + extra keys).
        images: the preprocessed, padded images (``images.tensor`` is (N, 3, H, W)); boxes in
            the input dicts are in these pixel coordinates (padding is bottom/right only).
        features: backbone (FPN) feature maps by name, each (N, C, H_l, W_l).
        proposals: the RPN proposals of each image (``proposal_boxes``, ``objectness_logits``).
        model: the detector (``model.roi_heads.region_embeddings(features, boxes)``,
            ``model.device``).
    """

    batched_inputs: list[dict]
    images: ImageList
    features: dict[str, torch.Tensor]
    proposals: list[Instances]
    model: nn.Module


def _as_boxes(value: Any, index: int, device: torch.device) -> Boxes:
    tensor = value.tensor if isinstance(value, Boxes) else torch.as_tensor(value)
    if tensor.numel() == 0:
        tensor = tensor.reshape(0, 4)
    if tensor.ndim != 2 or tensor.shape[1] != 4:
        raise ValueError(
            f"RegionDistiller: input {index}: 'teacher_proposals' must be Boxes or a (M, 4) XYXY "
            f"tensor, got shape {tuple(tensor.shape)}"
        )
    return Boxes(tensor.to(device=device, dtype=torch.float32))


class RegionDistiller(nn.Module):
    """Region-level distillation (ViLD-image, RKD): student region embeddings vs teacher ones.

    For each image the regions are its ``teacher_proposals``; the student embeddings are
    ``model.roi_heads.region_embeddings(features, boxes)`` (the box head + the box predictor's
    ``embed``; for :class:`~ovdet.modeling.roi_heads.ensemble_predictor.OVEnsembleOutputLayers`
    that is the separate ViLD image head). The teacher embeddings come from

    - offline targets: each input's ``teacher_embeddings`` (M_i, D), row-aligned with its
      ``teacher_proposals`` (precomputed, e.g. by ``ovdet extract-regions``, loaded by
      :class:`~ovdet.data.teacher_mapper.TeacherTargetsMapper`); or
    - an online teacher (``teacher``), called on the batch every step:
      ``teacher(batched_inputs) -> list of (M_i, D)`` from each input's ``image`` and
      ``teacher_proposals`` (e.g. ``ovdet.teacher.online.OnlineRegionTeacher``); inputs'
      ``teacher_embeddings`` are then ignored.

    The regions of all images are concatenated and given to ``objective(student, teacher)``,
    which returns the ``loss_*`` dict (its weights are the objective's). Images without
    proposals contribute nothing (a batch without any gives the objective's zero loss).

    The teacher is not a submodule: its (frozen) weights are excluded from the detector's
    ``parameters()`` and ``state_dict``, and it is called under ``torch.no_grad()``.

    Args:
        objective: ``(student (R, D), teacher (R, D)) -> dict[str, Tensor]``, e.g.
            :class:`~ovdet.modeling.distill.ViLDImageDistillation` or
            :class:`~ovdet.modeling.distill.RKDDistillation`.
        teacher: optional online teacher (see above).
        max_regions: keep at most this many proposals per image, the first ones (region stores
            keep them in descending score order); None keeps all.
    """

    def __init__(
        self,
        objective: nn.Module,
        *,
        teacher: Callable[[list[dict]], Sequence[torch.Tensor]] | None = None,
        max_regions: int | None = None,
    ) -> None:
        super().__init__()
        is_count = isinstance(max_regions, Integral) and not isinstance(max_regions, bool)
        if max_regions is not None and not (is_count and max_regions >= 0):
            raise ValueError(
                f"RegionDistiller: max_regions must be an int >= 0 or None (all regions), got "
                f"{max_regions!r}; in a command-line override, None is written null"
            )
        if teacher is not None and not callable(teacher):
            raise TypeError(
                f"RegionDistiller: teacher must be callable (batched_inputs -> list of (M_i, D) "
                f"embeddings), got {type(teacher).__name__}"
            )
        self.objective = objective
        self.max_regions = None if max_regions is None else int(max_regions)
        # Not registered as a submodule on purpose: see the class docstring.
        object.__setattr__(self, "teacher", teacher)

    def _region_inputs(self, batched_inputs: list[dict]) -> list[dict]:
        """Per-image dicts with (capped) ``teacher_proposals`` and, offline, embeddings."""
        online = self.teacher is not None
        out = []
        for i, x in enumerate(batched_inputs):
            if "teacher_proposals" not in x:
                raise KeyError(
                    f"RegionDistiller: input {i} has no 'teacher_proposals' (XYXY boxes in the "
                    "image's pixels). Provide them with the data: precomputed targets through "
                    "ovdet.data.teacher_mapper.TeacherTargetsMapper(store=...), or proposals in "
                    "the dataset dicts (mapped by OVDatasetMapper) for an online teacher"
                )
            if not online and "teacher_embeddings" not in x:
                raise KeyError(
                    f"RegionDistiller: input {i} has 'teacher_proposals' but no "
                    "'teacher_embeddings'. Load offline targets with "
                    "ovdet.data.teacher_mapper.TeacherTargetsMapper(store=...) (see `ovdet "
                    "extract-regions`), or give RegionDistiller(teacher=OnlineRegionTeacher(...)) "
                    "to compute them during training"
                )
            item = dict(x)
            boxes = x["teacher_proposals"]
            # a plain (M, 4) tensor for the online teacher (it reads tensors, not Boxes)
            item["teacher_proposals"] = boxes.tensor if isinstance(boxes, Boxes) else boxes
            if self.max_regions is not None:
                item["teacher_proposals"] = item["teacher_proposals"][: self.max_regions]
                if not online:
                    item["teacher_embeddings"] = x["teacher_embeddings"][: self.max_regions]
            out.append(item)
        return out

    def teacher_embeddings(self, inputs: list[dict]) -> list[torch.Tensor]:
        """Teacher embeddings of each image's proposals: list of (M_i, D), detached."""
        if self.teacher is None:
            return [torch.as_tensor(x["teacher_embeddings"]) for x in inputs]
        with torch.no_grad():
            embeddings = list(self.teacher(inputs))
        if len(embeddings) != len(inputs):
            raise ValueError(
                f"RegionDistiller: the online teacher returned {len(embeddings)} embedding "
                f"tensors for {len(inputs)} images"
            )
        return [e.detach() for e in embeddings]

    def forward(self, context: DistillContext) -> dict[str, torch.Tensor]:
        """Distillation losses of one training step.

        Args:
            context: the step (see :class:`DistillContext`); reads ``teacher_proposals`` (and
                offline ``teacher_embeddings``) of every input.

        Returns:
            the objective's ``loss_*`` dict.
        """
        model = context.model
        inputs = self._region_inputs(context.batched_inputs)
        device = context.images.tensor.device
        boxes = [_as_boxes(x["teacher_proposals"], i, device) for i, x in enumerate(inputs)]
        teacher = self.teacher_embeddings(inputs)
        for i, (b, t) in enumerate(zip(boxes, teacher)):
            if t.ndim != 2 or t.shape[0] != len(b):
                raise ValueError(
                    f"RegionDistiller: input {i} has {len(b)} teacher_proposals but teacher "
                    f"embeddings of shape {tuple(t.shape)}; they must be (M, D) row-aligned"
                )
        dims = {int(t.shape[1]) for t in teacher if t.shape[0] > 0}
        if len(dims) > 1:
            raise ValueError(
                f"RegionDistiller: teacher embeddings of the batch have different sizes {dims}"
            )
        student = model.roi_heads.region_embeddings(context.features, boxes)
        dim = dims.pop() if dims else student.shape[1]
        target = torch.cat(
            [t.to(device=student.device, dtype=student.dtype).reshape(-1, dim) for t in teacher]
        )
        return self.objective(student, target)

    def extra_repr(self) -> str:
        mode = "offline" if self.teacher is None else f"online ({type(self.teacher).__name__})"
        return f"mode={mode}, max_regions={self.max_regions}"


class CaptionDistiller(nn.Module):
    """Image-level distillation against captions (HierKD global level, METHODS.md §4).

    One caption per image is picked from its ``captions`` (``"first"``, or ``"random"`` with a
    generator seeded at construction and held by this module; its state is not checkpointed),
    encoded by the text encoder (an ``ovdet.text.TextEncoder``; encodings are memoised in a
    bounded per-instance LRU dict since captions repeat across epochs), and given with the
    backbone features to the objective. Images without captions (key absent, ``None``, empty
    list or only empty strings) are masked out through the objective's ``valid`` argument.

    Args:
        objective: :class:`~ovdet.modeling.distill.HierKDGlobalDistillation` (or any module
            ``(features, text_embeddings (N, D), valid (N,)) -> dict[str, Tensor]``); its
            parameters (pooling, projection) train with the detector.
        text_encoder: ``TextEncoder`` (``dim``, ``encode(list[str]) -> (K, D)``); not an
            ``nn.Module``, its weights are not part of the detector.
        caption_key: input-dict key holding the captions.
        choose: "random" or "first".
        seed: seed of the caption-choice generator.
        cache_size: number of encoded captions kept (LRU).
        in_features: feature maps given to the objective (default: all backbone outputs).
    """

    def __init__(
        self,
        objective: nn.Module,
        text_encoder: TextEncoder,
        *,
        caption_key: str = "captions",
        choose: str = "random",
        seed: int = 0,
        cache_size: int = 4096,
        in_features: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if choose not in CHOOSE_MODES:
            raise ValueError(
                f"CaptionDistiller: choose must be one of {CHOOSE_MODES}, got {choose!r}"
            )
        if cache_size < 0:
            raise ValueError(f"CaptionDistiller: cache_size must be >= 0, got {cache_size}")
        if not callable(getattr(text_encoder, "encode", None)):
            raise TypeError(
                "CaptionDistiller: text_encoder must be an ovdet.text.TextEncoder (with "
                f"encode(list[str])), got {type(text_encoder).__name__}"
            )
        self.objective = objective
        self.text_encoder = text_encoder
        self.caption_key = caption_key
        self.choose = choose
        self.cache_size = int(cache_size)
        self.in_features = None if in_features is None else list(in_features)
        self._generator = torch.Generator().manual_seed(int(seed))
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def _captions_of(self, x: dict, index: int) -> list[str]:
        value = x.get(self.caption_key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f"CaptionDistiller: input {index}: {self.caption_key!r} must be a list of "
                f"strings or a string, got {type(value).__name__}"
            )
        for j, c in enumerate(value):
            if not isinstance(c, str):
                raise TypeError(
                    f"CaptionDistiller: input {index}: {self.caption_key!r}[{j}] is a "
                    f"{type(c).__name__}, not a string"
                )
        return [c for c in value if c.strip()]

    def choose_captions(self, batched_inputs: list[dict]) -> list[str | None]:
        """One caption per image (None when it has none)."""
        chosen: list[str | None] = []
        for i, x in enumerate(batched_inputs):
            captions = self._captions_of(x, i)
            if not captions:
                chosen.append(None)
            elif self.choose == "first" or len(captions) == 1:
                chosen.append(captions[0])
            else:
                k = int(torch.randint(len(captions), (1,), generator=self._generator))
                chosen.append(captions[k])
        return chosen

    def encode(self, captions: list[str]) -> torch.Tensor:
        """(K,) captions -> (K, D) text embeddings (CPU, float32), through the LRU cache."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        fresh: dict[str, torch.Tensor] = {}
        if missing:
            emb = self.text_encoder.encode(missing)
            if emb.ndim != 2 or emb.shape[0] != len(missing):
                raise ValueError(
                    f"CaptionDistiller: text_encoder.encode returned shape {tuple(emb.shape)} "
                    f"for {len(missing)} captions"
                )
            fresh = dict(zip(missing, emb.detach().float().cpu()))
        rows = []
        for c in captions:
            row = fresh.get(c)
            if row is None:
                row = self._cache[c]
                self._cache.move_to_end(c)
            rows.append(row)
        if self.cache_size:
            for c, row in fresh.items():
                self._cache[c] = row
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return torch.stack(rows) if rows else torch.zeros(0, int(self.text_encoder.dim))

    def clear_cache(self) -> None:
        """Forget the memoised caption embeddings."""
        self._cache.clear()

    def forward(self, context: DistillContext) -> dict[str, torch.Tensor]:
        """Image-caption distillation loss of one training step.

        Args:
            context: the step; reads each input's captions and ``context.features``.

        Returns:
            the objective's ``loss_*`` dict (``loss_hierkd_global`` for HierKD).
        """
        features = context.features
        if self.in_features is not None:
            missing = [f for f in self.in_features if f not in features]
            if missing:
                raise KeyError(
                    f"CaptionDistiller: in_features {missing} are not backbone outputs "
                    f"{sorted(features)}"
                )
            features = {f: features[f] for f in self.in_features}
        chosen = self.choose_captions(context.batched_inputs)
        valid = torch.tensor([c is not None for c in chosen], dtype=torch.bool)
        dim = int(self.text_encoder.dim)
        text = torch.zeros(len(chosen), dim)
        if bool(valid.any()):
            text[valid] = self.encode([c for c in chosen if c is not None])
        device = next(iter(features.values())).device
        return self.objective(features, text.to(device), valid.to(device))

    def extra_repr(self) -> str:
        return (
            f"caption_key={self.caption_key!r}, choose={self.choose!r}, "
            f"cache_size={self.cache_size}, in_features={self.in_features}"
        )
