"""``RegionStoreWriter``: crash-safe appends of one rank's images to a region store.

See the package docstring for the order of writes that makes a crash lose no committed shard.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import save as safetensors_save

from ovdet.data.region_store.layout import (
    FORMAT,
    SHARD_DIR,
    SHARD_RE,
    TMP_RE,
    ImageId,
    describe_id,
    normalize_image_id,
)
from ovdet.utils.io import atomic_write_bytes, fsync_dir

if TYPE_CHECKING:  # annotations only: the store module imports this one
    from ovdet.data.region_store import RegionEmbeddingStore

__all__ = ["RegionStoreWriter"]

logger = logging.getLogger(__name__)


class RegionStoreWriter:
    """Appends one rank's images to a :class:`~ovdet.data.region_store.RegionEmbeddingStore`.

    See the package docstring (:mod:`ovdet.data.region_store`) for the crash-safe write order.

    Images are buffered in memory and committed ``shard_size`` at a time; leaving the context
    (normally or by an exception) commits the buffered images too, since each of them is
    complete. Only a hard kill loses the buffered images, which a resumed run recomputes.

    Args:
        store: the store.
        rank: this writer's rank (its index file and shard names carry it).
        shard_size: images per shard.
    """

    def __init__(self, store: RegionEmbeddingStore, rank: int = 0, shard_size: int = 256) -> None:
        if rank < 0:
            raise ValueError(f"RegionStoreWriter: rank must be >= 0, got {rank}")
        if shard_size < 1:
            raise ValueError(f"RegionStoreWriter: shard_size must be >= 1, got {shard_size}")
        self.store = store
        self.rank = int(rank)
        self.shard_size = int(shard_size)
        self.shard_dir = store.root / SHARD_DIR
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.index_path = store.root / f"index-rank{self.rank}.jsonl"
        self._repair_index()
        self._remove_stray_temporaries()
        self._done = store.done_ids()
        self._next_seq = self._first_free_seq()
        self._pending: list[tuple[ImageId, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        self._pending_ids: set[ImageId] = set()
        self._closed = False
        self.images_written = 0
        self.regions_written = 0

    # ------------------------------------------------------------------ startup repair
    def _repair_index(self) -> None:
        """Cut a torn last line of this rank's index so later appends start on a fresh line."""
        if not self.index_path.is_file():
            return
        data = self.index_path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        try:
            json.loads(tail)
            keep = data + b"\n"  # complete entry, only the newline was lost
        except json.JSONDecodeError:
            logger.warning(
                "%s: removing a torn last line left by an interrupted run (its images are redone)",
                self.index_path,
            )
            keep = data[:cut]
        with open(self.index_path, "r+b") as f:
            f.seek(0)
            f.write(keep)
            f.truncate(len(keep))
            f.flush()
            os.fsync(f.fileno())

    def _remove_stray_temporaries(self) -> None:
        for path in self.shard_dir.iterdir():
            match = TMP_RE.match(path.name)
            if match and int(match.group(1)) == self.rank:
                logger.warning("removing half-written shard %s left by an interrupted run", path)
                path.unlink(missing_ok=True)

    def _first_free_seq(self) -> int:
        """1 + the largest shard number of this rank on disk (indexed or orphaned)."""
        largest = -1
        for path in self.shard_dir.iterdir():
            match = SHARD_RE.match(path.name)
            if match and int(match.group(1)) == self.rank:
                largest = max(largest, int(match.group(2)))
        return largest + 1

    # ------------------------------------------------------------------ adding
    def add(
        self,
        image_id: ImageId,
        boxes: torch.Tensor | np.ndarray,
        embeddings: torch.Tensor | np.ndarray,
        scores: torch.Tensor | np.ndarray | None = None,
    ) -> None:
        """Add one image's targets.

        Args:
            image_id: int or str id; must not be in the store yet.
            boxes: (M, 4) XYXY in original image pixels.
            embeddings: (M, D) teacher embeddings, D = ``store.dim``.
            scores: optional (M,) proposal scores.
        """
        if self._closed:
            raise RuntimeError("RegionStoreWriter.add: the writer is closed.")
        key = normalize_image_id(image_id)
        where = f"image id {describe_id(key)}"
        if key in self._done or key in self._pending_ids:
            raise ValueError(
                f"{where} is already in region store {self.store.root}; an image is stored once "
                "(skip ids in store.done_ids())."
            )
        boxes = torch.as_tensor(boxes).detach().cpu().to(torch.float32)
        embeddings = torch.as_tensor(embeddings).detach().cpu()
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{where}: boxes must be (M, 4) XYXY, got shape {tuple(boxes.shape)}")
        m = boxes.shape[0]
        if embeddings.ndim != 2 or embeddings.shape != (m, self.store.dim):
            raise ValueError(
                f"{where}: embeddings must be (M, D) = ({m}, {self.store.dim}) to match the "
                f"boxes and the store's dim, got shape {tuple(embeddings.shape)}"
            )
        if not torch.isfinite(boxes).all():
            raise ValueError(f"{where}: boxes contain NaN or infinity")
        if embeddings.is_floating_point() and not torch.isfinite(embeddings).all():
            raise ValueError(f"{where}: embeddings contain NaN or infinity")
        if scores is not None:
            scores = torch.as_tensor(scores).detach().cpu().to(torch.float32).reshape(-1)
            if scores.shape[0] != m:
                raise ValueError(f"{where}: {scores.shape[0]} scores for {m} boxes")
        self._pending.append((key, boxes, embeddings.to(self.store.dtype), scores))
        self._pending_ids.add(key)
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Commit the buffered images as one shard (no-op when nothing is buffered)."""
        if not self._pending:
            return
        ids = [item[0] for item in self._pending]
        counts = [int(item[1].shape[0]) for item in self._pending]
        scored = [item[3] is not None for item in self._pending]
        boxes = torch.cat([item[1] for item in self._pending]).contiguous()
        embeddings = torch.cat([item[2] for item in self._pending]).contiguous()
        scores = torch.cat(
            [
                item[3] if item[3] is not None else torch.full((item[1].shape[0],), float("nan"))
                for item in self._pending
            ]
        ).contiguous()
        offsets = torch.tensor([0, *np.cumsum(counts).tolist()], dtype=torch.int64)
        payload = safetensors_save(
            {"boxes": boxes, "embeddings": embeddings, "scores": scores, "offsets": offsets},
            metadata={"format": FORMAT, "ids": json.dumps(ids), "teacher": self.store.teacher},
        )

        name = f"r{self.rank}-{self._next_seq:06d}.safetensors"
        final = self.shard_dir / name
        atomic_write_bytes(final, payload, durable=True)

        entry = {"shard": f"{SHARD_DIR}/{name}", "ids": ids, "counts": counts, "scored": scored}
        line = (json.dumps(entry) + "\n").encode("utf-8")
        new_index = not self.index_path.exists()
        with open(self.index_path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if new_index:
            fsync_dir(self.store.root)

        self._next_seq += 1
        self._done.update(ids)
        self.store._register(entry)
        self.images_written += len(ids)
        self.regions_written += int(boxes.shape[0])
        self._pending.clear()
        self._pending_ids.clear()

    def close(self) -> None:
        """Commit buffered images and close the writer."""
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self) -> RegionStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
