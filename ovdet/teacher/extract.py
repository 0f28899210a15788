"""Offline ViLD-image teacher targets: teacher embeddings of top-M proposals, to a region store.

:func:`extract_regions` (docs/methods.md#region-teacher-and-region-store): for every
image of a dataset, take the top-M class-agnostic proposals (from a file or from an RPN
trained on base boxes), embed each with a :class:`~ovdet.teacher.base.RegionTeacher` (the
CLIP region teacher: crops at 1.0x and 1.5x, :class:`~ovdet.teacher.clip_crop.
CLIPCropTeacher`) and append ``(proposals, embeddings, scores)`` to a
:class:`~ovdet.data.region_store.RegionEmbeddingStore`. The command ``ovdet
extract-regions`` (:mod:`ovdet.cli.extract_regions`) runs it over ranks.

Image ``i`` goes to rank ``i % world_size``; all ranks write to the same store. It is
resumable: running it again skips the images already in the store, whatever rank stored them.
An image that cannot be read (missing or corrupt file, size differing from the dataset's) or
that has no proposals is logged with its path, listed in ``<store root>/errors-rank{R}.json``
and skipped; it is retried by the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch
from detectron2.data import detection_utils as d2_utils
from tqdm import tqdm

from ovdet.data.region_store import RegionEmbeddingStore, normalize_image_id
from ovdet.teacher.base import RegionTeacher
from ovdet.teacher.proposals import (
    ProposalSource,
    as_proposals,
    lookup_proposals,
    select_proposals,
)
from ovdet.utils.io import write_json

__all__ = ["extract_regions"]

logger = logging.getLogger(__name__)


class _SkipImage(Exception):
    """This image cannot be processed (reported and skipped); ``__cause__`` says why."""


def _read_checked(record: Mapping[str, Any]) -> np.ndarray:
    """The image as (H, W, 3) uint8 RGB; raises _SkipImage when unreadable or of the wrong size."""
    try:
        image = d2_utils.read_image(record["file_name"], format="RGB")
    except (OSError, ValueError, SyntaxError) as e:  # missing, corrupt, not an image
        raise _SkipImage() from e
    height, width = image.shape[:2]
    expected = (record.get("height"), record.get("width"))
    if None not in expected and tuple(expected) != (height, width):
        raise _SkipImage() from ValueError(
            f"image is {width}x{height} (WxH) but the dataset says {expected[1]}x{expected[0]}; "
            "its proposals would not match"
        )
    return image


def _proposals_for(
    proposals: ProposalSource, record: Mapping[str, Any], image_id: Any, image: np.ndarray
) -> dict[str, torch.Tensor]:
    if isinstance(proposals, Mapping):
        try:
            value = lookup_proposals(proposals, image_id)
        except KeyError as e:
            raise _SkipImage() from e
    elif callable(proposals):
        value = proposals(record, image)
    else:
        raise TypeError(
            "extract_regions: proposals must be a mapping {image_id: proposals} or a callable "
            f"(dataset_dict, rgb_image) -> proposals, got {type(proposals).__name__}"
        )
    if value is None:
        raise _SkipImage() from KeyError(
            f"the proposal source returned no proposals for image id {image_id!r}"
        )
    return as_proposals(value, f"proposals of image id {image_id!r}")


def _check_ids_overlap(dataset_dicts: Sequence[Mapping[str, Any]], proposals: Mapping) -> None:
    """Fail early when a proposals mapping shares no image id with the dataset."""
    if not dataset_dicts:
        return
    if not proposals:
        raise ValueError("extract_regions: the proposals mapping is empty")
    for record in dataset_dicts:
        try:
            lookup_proposals(proposals, record.get("image_id"))
            return
        except KeyError:
            continue
    dataset_ids = [d.get("image_id") for d in dataset_dicts[:3]]
    proposal_ids = list(proposals)[:3]
    raise ValueError(
        f"extract_regions: no dataset image id has proposals (dataset ids e.g. {dataset_ids}, "
        f"proposal ids e.g. {proposal_ids}); is the proposals file for this dataset?"
    )


def extract_regions(
    dataset_dicts: Sequence[Mapping[str, Any]],
    teacher: RegionTeacher,
    proposals: ProposalSource,
    store: RegionEmbeddingStore,
    top_m: int = 32,
    *,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    nms_thresh: Optional[float] = None,
    min_size: float = 0.0,
    shard_size: int = 256,
    nms_legacy_plus_one: bool = False,
) -> dict[str, Any]:
    """Compute teacher embeddings of the top-M proposals of this rank's images into ``store``.

    Image ``i`` of ``dataset_dicts`` belongs to rank ``i % world_size``. Images whose id is in
    the store are skipped (resume). Each image is read with detectron2's ``read_image`` as RGB;
    its proposals are clipped to the image, filtered by ``min_size`` and ``nms_thresh`` and cut
    to the ``top_m`` best, then embedded with ``teacher.embed``. Images that cannot be read or
    have no proposals are logged, listed in ``store.root / f"errors-rank{rank}.json"`` and
    skipped (an image with proposals that all get filtered out is stored with M = 0).

    Args:
        dataset_dicts: detectron2 dataset dicts with ``file_name`` and ``image_id`` (optional
            ``height`` / ``width`` are checked against the image).
        teacher: the region teacher (e.g. from
            :func:`~ovdet.teacher.factory.build_clip_region_teacher`).
        proposals: ``{image_id: proposals}`` (int ids also match string keys) or a callable
            ``(dataset_dict, rgb_image (H, W, 3) uint8) -> proposals``; proposals are
            ``{"boxes": (N, 4) XYXY, "scores": (N,)}`` or an (N, 4) / (N, 5) array in original
            image pixels (e.g. :func:`~ovdet.teacher.proposals.load_proposals` or
            :class:`~ovdet.teacher.proposals.ModelProposals`).
        store: the region store (its ``dim`` must equal ``teacher.dim``).
        top_m: proposals kept per image.
        rank: this process's rank.
        world_size: number of ranks.
        progress: show a tqdm progress bar.
        nms_thresh: optional class-agnostic NMS IoU threshold before top-M.
        min_size: drop proposals narrower or lower than this (pixels).
        shard_size: images per store shard.
        nms_legacy_plus_one: NMS with the "+1" pixel convention
            (:func:`~ovdet.teacher.proposals.select_proposals`). RKD's official selection is
            ``top_m=5, nms_thresh=0.5, nms_legacy_plus_one=True`` with a teacher cropping each
            box once (``scales=(1.0,)``).

    Returns:
        Summary dict: ``rank``, ``world_size``, ``images`` (assigned to this rank), ``done``
        (newly stored), ``skipped`` (already stored), ``failed``, ``regions`` (newly stored),
        ``seconds``, ``images_per_s`` (done / seconds), ``errors_file``.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"extract_regions: need 0 <= rank < world_size, got {rank}, {world_size}")
    if top_m < 1:
        raise ValueError(f"extract_regions: top_m must be >= 1, got {top_m}")
    if teacher.dim != store.dim:
        raise ValueError(
            f"extract_regions: teacher embeddings have D={teacher.dim} but region store "
            f"{store.root} holds D={store.dim}; use a store made for this teacher."
        )
    if isinstance(proposals, Mapping):
        _check_ids_overlap(dataset_dicts, proposals)

    start_time = time.perf_counter()
    assigned = [d for i, d in enumerate(dataset_dicts) if i % world_size == rank]
    done_before = store.done_ids()
    errors: list[dict[str, Any]] = []
    errors_path = store.root / f"errors-rank{rank}.json"
    counts = {"done": 0, "skipped": 0, "failed": 0, "regions": 0}

    last_errors_write = 0.0

    def write_errors() -> None:
        write_json(errors_path, {"rank": rank, "errors": errors}, indent=2, sort_keys=True)

    def fail(record: Mapping[str, Any], image_id: Any, error: BaseException) -> None:
        nonlocal last_errors_write
        file_name = record.get("file_name")
        message = f"{type(error).__name__}: {error}"
        logger.warning("skipping image id %r (%s): %s", image_id, file_name, message)
        errors.append({"image_id": image_id, "file_name": file_name, "error": message})
        counts["failed"] += 1
        if time.perf_counter() - last_errors_write > 10.0:  # bounded cost for many failures
            write_errors()
            last_errors_write = time.perf_counter()

    try:
        bar = tqdm(assigned, desc=f"extract-regions rank {rank}", disable=not progress)
        with store.writer(rank=rank, shard_size=shard_size) as writer, bar:
            for record in bar:
                if "image_id" not in record or "file_name" not in record:
                    raise ValueError(
                        "extract_regions: every dataset dict needs 'image_id' and 'file_name'; "
                        f"got keys {sorted(record)}"
                    )
                image_id = normalize_image_id(record["image_id"])
                if image_id in done_before:
                    counts["skipped"] += 1
                    continue
                try:
                    image = _read_checked(record)
                    raw = _proposals_for(proposals, record, image_id, image)
                except _SkipImage as e:
                    fail(record, image_id, e.__cause__ or e)
                    continue
                selected = select_proposals(
                    raw["boxes"],
                    raw["scores"],
                    top_m=top_m,
                    nms_thresh=nms_thresh,
                    min_size=min_size,
                    image_size=image.shape[:2],
                    nms_legacy_plus_one=nms_legacy_plus_one,
                )
                embeddings = teacher.embed(image, selected["boxes"])
                writer.add(image_id, selected["boxes"], embeddings, selected["scores"])
                counts["done"] += 1
                counts["regions"] += int(selected["boxes"].shape[0])
    finally:
        write_errors()

    seconds = time.perf_counter() - start_time
    return {
        "rank": rank,
        "world_size": world_size,
        "images": len(assigned),
        **counts,
        "seconds": round(seconds, 3),
        "images_per_s": round(counts["done"] / seconds, 3) if seconds > 0 else 0.0,
        "errors_file": str(errors_path),
    }
