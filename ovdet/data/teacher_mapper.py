"""Dataset mapper that attaches precomputed teacher targets (region proposals + CLIP embeddings)."""

from __future__ import annotations

import os

import torch
from detectron2.config import configurable

from ovdet.data.mapper import OVDatasetMapper
from ovdet.data.region_store import RegionEmbeddingStore

__all__ = ["TeacherTargetsMapper", "MISSING_MODES"]

MISSING_MODES = ("error", "empty")


class TeacherTargetsMapper(OVDatasetMapper):
    """:class:`OVDatasetMapper` that reads ``teacher_proposals`` / ``teacher_embeddings`` from a
    :class:`~ovdet.data.region_store.RegionEmbeddingStore`.

    For each dataset dict, the targets of its ``image_id`` (boxes XYXY in ORIGINAL image
    pixels, embeddings (M, D)) are inserted into the dict *before* the parent mapper runs, so
    the proposals go through exactly the same geometry as the image (albumentations, resize,
    flip, ...): the output has ``teacher_proposals`` (M', 4) float32 in the pixels of
    ``image`` and row-aligned ``teacher_embeddings`` (M', D) float32 (proposals that leave the
    image are dropped with their embeddings). This is the offline input of
    :class:`~ovdet.modeling.distill.RegionDistiller`.

    Images missing from the store (``missing``):

    - ``"error"`` (default): ``KeyError`` naming the image and the store;
    - ``"empty"``: the image gets zero proposals (it trains without region distillation) and
      is marked: ``teacher_missing`` is True in its output. The region distiller counts such
      images, logs them and stops training with an error when too many are missing
      (:class:`~ovdet.modeling.distill.RegionDistiller`, ``max_missing_fraction``).

    Every output also has ``teacher_missing`` (bool) and ``teacher_store`` (the store's
    directory, a string), documented in :mod:`ovdet.modeling.distill.context`.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        store: str | os.PathLike | RegionEmbeddingStore,
        missing: str = "error",
        **kwargs,
    ):
        """
        Args:
            is_train: as in :class:`OVDatasetMapper`.
            store: a region store or its directory (opened read-only here).
            missing: "error" or "empty", see the class docstring.
            kwargs: the other arguments of :class:`OVDatasetMapper` (``augmentations``,
                ``image_format``, ``albumentations``, ...).
        """
        if missing not in MISSING_MODES:
            raise ValueError(
                f"TeacherTargetsMapper: missing must be one of {MISSING_MODES}, got {missing!r}"
            )
        super().__init__(is_train, **kwargs)
        if not isinstance(store, RegionEmbeddingStore):
            store = RegionEmbeddingStore(store)
        self.store = store
        self.missing = missing

    @classmethod
    def from_config(
        cls,
        cfg,
        is_train: bool = True,
        *,
        store: str | os.PathLike | RegionEmbeddingStore,
        missing: str = "error",
    ) -> dict:
        ret = super().from_config(cfg, is_train)
        ret.update(store=store, missing=missing)
        return ret

    def targets(self, dataset_dict: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The store's (boxes (M, 4) original pixels, embeddings (M, D) float32) of one image.

        With ``missing="empty"``, an image missing from the store gets (0, 4) and (0, D).
        """
        boxes, embeddings, _ = self._lookup(dataset_dict)
        return boxes, embeddings

    def _lookup(self, dataset_dict: dict) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(boxes, embeddings, missing from the store) of one image."""
        if "image_id" not in dataset_dict:
            raise KeyError(
                f"TeacherTargetsMapper: dataset dict of {dataset_dict.get('file_name', '?')} has "
                "no 'image_id'; teacher targets are looked up by image id"
            )
        image_id = dataset_dict["image_id"]
        if image_id not in self.store:
            if self.missing == "error":
                raise KeyError(
                    f"TeacherTargetsMapper: image_id={image_id!r} "
                    f"({dataset_dict.get('file_name', '?')}) is not in region store "
                    f"{self.store.root}; extract its targets (`ovdet extract-regions`) or build "
                    "the mapper with missing='empty'"
                )
            return torch.zeros(0, 4), torch.zeros(0, self.store.dim), True
        target = self.store.get(image_id)
        return target["boxes"].float(), target["embeddings"].float(), False

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: one image in detectron2 dataset format, with ``image_id``.

        Returns:
            the :class:`OVDatasetMapper` output with ``teacher_proposals``,
            ``teacher_embeddings``, ``teacher_missing`` (True when the image is not in the
            store) and ``teacher_store`` (the store's directory).
        """
        for key in ("teacher_proposals", "teacher_embeddings"):
            if key in dataset_dict:
                raise ValueError(
                    f"TeacherTargetsMapper: dataset dict image_id={dataset_dict.get('image_id')!r} "
                    f"already has {key!r}; targets come from the store - use OVDatasetMapper for "
                    "dataset-provided proposals"
                )
        boxes, embeddings, missing = self._lookup(dataset_dict)
        # a shallow copy: the parent deep-copies before modifying
        dataset_dict = {
            **dataset_dict,
            "teacher_proposals": boxes,
            "teacher_embeddings": embeddings,
        }
        out = super().__call__(dataset_dict)
        if out["teacher_embeddings"].numel() == 0:
            # keep D for images without proposals (the parent only knows the number of rows)
            out["teacher_embeddings"] = out["teacher_embeddings"].reshape(0, self.store.dim)
        out["teacher_missing"] = missing
        out["teacher_store"] = str(self.store.root)
        return out
