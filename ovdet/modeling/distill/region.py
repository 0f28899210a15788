"""Region-level distillation: student region embeddings vs teacher embeddings of the same
boxes (the machinery of ViLD-image and RKD; their objectives live in ``ovdet.methods``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import torch
from detectron2.structures import Boxes
from detectron2.utils.events import EventStorage, get_event_storage
from torch import nn

from .context import DistillContext

__all__ = ["RegionDistiller"]

logger = logging.getLogger(__name__)


def _event_storage() -> EventStorage | None:
    """detectron2's current event storage, or None outside a training loop (tests, tools)."""
    try:
        return get_event_storage()
    except AssertionError:  # get_event_storage asserts that a storage is open
        return None


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

    **Images missing from the region store** are not silent. The mapper marks them
    (``teacher_missing``, see :class:`~ovdet.data.teacher_mapper.TeacherTargetsMapper` with
    ``missing="empty"``); this distiller counts them and

    - puts their number in each step to detectron2's event storage as
      ``distill/missing_images`` (in ``metrics.json`` and the training log);
    - every ``log_period`` steps with missing images, logs a warning: how many of the images
      of those steps and since the start were missing, and from which store;
    - raises ``RuntimeError`` (naming the store, the count and example images) when, once at
      least ``missing_min_images`` images have been seen, more than ``max_missing_fraction``
      of the images since the start (of this process) were missing: a store made for another
      dataset, or an extraction that stopped early, would otherwise switch distillation off.

    Args:
        objective: ``(student (R, D), teacher (R, D)) -> dict[str, Tensor]``, e.g.
            :class:`~ovdet.methods.vild.ViLDImageDistillation` or
            :class:`~ovdet.methods.rkd.RKDDistillation`.
        teacher: optional online teacher (see above).
        max_regions: keep at most this many proposals per image, the first ones (region stores
            keep them in descending score order); None keeps all.
        max_missing_fraction: largest tolerated fraction of images missing from the store
            (default 0.01); None: never an error (still counted and logged).
        missing_min_images: images seen before the fraction is checked (a few missing images
            in the first batches are not yet a fraction).
        log_period: steps between two warnings about missing images.
    """

    def __init__(
        self,
        objective: nn.Module,
        *,
        teacher: Callable[[list[dict]], Sequence[torch.Tensor]] | None = None,
        max_regions: int | None = None,
        max_missing_fraction: float | None = 0.01,
        missing_min_images: int = 500,
        log_period: int = 1000,
    ) -> None:
        super().__init__()
        if max_missing_fraction is not None and not (
            isinstance(max_missing_fraction, Real)
            and not isinstance(max_missing_fraction, bool)
            and 0.0 <= max_missing_fraction <= 1.0
        ):
            raise ValueError(
                "RegionDistiller: max_missing_fraction must be a number in [0, 1] or None (no "
                f"limit), got {max_missing_fraction!r}"
            )
        for name, value in (("missing_min_images", missing_min_images), ("log_period", log_period)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"RegionDistiller: {name} must be an int >= 1, got {value!r}")
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
        self.max_missing_fraction = (
            None if max_missing_fraction is None else float(max_missing_fraction)
        )
        self.missing_min_images = int(missing_min_images)
        self.log_period = int(log_period)
        # Not registered as a submodule on purpose: see the class docstring.
        object.__setattr__(self, "teacher", teacher)
        # missing-image counts of this process (not checkpointed)
        self.images_seen = 0
        self.images_missing = 0
        self._steps = 0
        self._period = {"seen": 0, "missing": 0}
        self._stores: set[str] = set()
        self._examples: list[str] = []

    def count_missing(self, batched_inputs: list[dict]) -> int:
        """Count, log and check the batch's images that are missing from their region store.

        Returns:
            the number of inputs with ``teacher_missing`` True.

        Raises:
            RuntimeError: when the fraction missing since the start exceeds
                ``max_missing_fraction`` (see the class docstring).
        """
        missing = [x for x in batched_inputs if bool(x.get("teacher_missing", False))]
        for x in missing:
            self._stores.add(str(x.get("teacher_store", "?")))
            if len(self._examples) < 5:
                self._examples.append(
                    f"image_id={x.get('image_id', '?')!r} ({x.get('file_name', '?')})"
                )
        self._steps += 1
        self.images_seen += len(batched_inputs)
        self.images_missing += len(missing)
        self._period["seen"] += len(batched_inputs)
        self._period["missing"] += len(missing)
        storage = _event_storage()
        if storage is not None:
            storage.put_scalar("distill/missing_images", len(missing), smoothing_hint=False)
        if self._steps % self.log_period == 0:
            if self._period["missing"]:
                logger.warning(
                    "RegionDistiller: %d of the %d images of the last %d steps (%d of %d since "
                    "the start) are missing from region store %s and trained without region "
                    "distillation",
                    self._period["missing"],
                    self._period["seen"],
                    self.log_period,
                    self.images_missing,
                    self.images_seen,
                    ", ".join(sorted(self._stores)),
                )
            self._period = {"seen": 0, "missing": 0}
        self._check_missing()
        return len(missing)

    def _check_missing(self) -> None:
        limit = self.max_missing_fraction
        if limit is None or self.images_seen < self.missing_min_images:
            return
        fraction = self.images_missing / self.images_seen
        if fraction > limit:
            raise RuntimeError(
                f"RegionDistiller: {self.images_missing} of the {self.images_seen} training "
                f"images so far ({fraction:.1%}) are missing from region store "
                f"{', '.join(sorted(self._stores))} (max_missing_fraction={limit}), e.g. "
                f"{'; '.join(self._examples)}. Extract their targets (`ovdet extract-regions` "
                "resumes and adds the missing images; check that the store was made for this "
                "dataset), or raise the distiller's max_missing_fraction (None: no limit)"
            )

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
        self.count_missing(context.batched_inputs)
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
        return (
            f"mode={mode}, max_regions={self.max_regions}, "
            f"max_missing_fraction={self.max_missing_fraction}"
        )
