"""On-disk store of per-image teacher targets (ViLD-image): proposals + embeddings.

Layout of a store directory ``root``::

    root/store.json                  metadata: teacher identity, D, dtype, scales, top_m,
                                     proposal source (written once, atomically)
    root/index-rank{R}.jsonl         one JSON line per finished shard of writer rank R
    root/shards/r{R}-{S:06d}.safetensors
                                     shard S of rank R (safetensors, read lazily)
    root/errors-rank{R}.json         images that rank R could not process (written by
                                     :mod:`ovdet.teacher.extract`)

A shard holds the images it covers back to back:

- ``boxes`` (N, 4) float32, XYXY in ORIGINAL image pixels (as the images are read from disk,
  EXIF orientation applied, before any augmentation);
- ``embeddings`` (N, D) float16 or float32, row i is the L2-normalised teacher embedding of
  box i (stored rounded to the store's dtype);
- ``scores`` (N,) float32 proposal scores (NaN for images added without scores);
- ``offsets`` (n + 1,) int64: image k owns rows ``offsets[k]:offsets[k + 1]``;

and its safetensors header metadata names the images (``ids``: JSON list, int ids stay ints,
str ids stay strings).

Crash safety: a shard is written to a hidden temporary file in ``shards/``, flushed and fsynced,
then ``os.replace``d to its final name; only THEN is its index line (``{"shard", "ids",
"counts", "scored"}``) appended to ``index-rank{R}.jsonl`` and fsynced. Readers only open
shards named in an index, so a half-written shard (temporary file, or a shard whose index line
was never written) is never read; a shard whose index line is complete is never redone
(:meth:`RegionEmbeddingStore.done_ids`). A writer that opens a rank repairs a torn last index
line and deletes that rank's stray temporary files.

Several writers (one per rank, e.g. one per GPU or machine on a shared file system) can fill a
store at once; each appends only to its own index and shards, and readers take the union.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from ovdet.utils.io import atomic_write_bytes, fsync_dir, write_json

__all__ = ["ImageId", "RegionEmbeddingStore", "RegionStoreWriter", "normalize_image_id"]

logger = logging.getLogger(__name__)

ImageId = Union[int, str]

FORMAT = "ovdet-region-store"
VERSION = 1
METADATA_FILE = "store.json"
SHARD_DIR = "shards"
DTYPES = {"float16": torch.float16, "float32": torch.float32}
# keys of store.json that must agree when an existing store is opened with explicit values
CHECKED_KEYS = ("teacher", "dim", "dtype", "scales", "top_m", "proposals")

_INDEX_RE = re.compile(r"^index-rank(\d+)\.jsonl$")
_SHARD_RE = re.compile(r"^r(\d+)-(\d+)\.safetensors$")
# temporary files of utils.io.atomic_write: ".<final name>.<random>.tmp"
_TMP_RE = re.compile(r"^\.r(\d+)-(\d+)\.safetensors\..*\.tmp$")


def normalize_image_id(image_id: Any) -> ImageId:
    """An image id as stored: Python ``int`` (numpy / torch integers converted) or ``str``.

    Raises:
        TypeError: for any other type (bool and float included).
    """
    if isinstance(image_id, str):
        return image_id
    if isinstance(image_id, bool):
        raise TypeError(f"image id must be an int or a str, got bool {image_id!r}")
    if isinstance(image_id, (int, np.integer)):
        return int(image_id)
    if (
        isinstance(image_id, torch.Tensor)
        and image_id.numel() == 1
        and not (image_id.is_floating_point() or image_id.dtype == torch.bool)
    ):
        return int(image_id.item())
    raise TypeError(f"image id must be an int or a str, got {type(image_id).__name__} {image_id!r}")


def _describe_id(image_id: ImageId) -> str:
    return f"{image_id!r} ({type(image_id).__name__})"


@dataclass(frozen=True)
class _Location:
    shard: str  # path relative to the store root
    start: int
    end: int
    scored: bool


class RegionEmbeddingStore:
    """A sharded on-disk store of per-image teacher proposals and embeddings.

    Opening an existing store (``root/store.json`` present) checks every metadata value passed
    here against the stored one and raises on a mismatch, naming both: a store never mixes
    targets of different teachers, embedding sizes, dtypes, scales, top-M or proposal sources.
    A new store is created when ``teacher`` and ``dim`` are given and ``root`` holds none.

    Args:
        root: the store directory.
        teacher: identity of the teacher weights and mode (a stable string, e.g.
            ``"open_clip:ViT-B-32:sha256=...:crop-pil"``). Required to create a store.
        dim: embedding dimension D. Required to create a store.
        dtype: "float16" (default for new stores) or "float32": how embeddings are stored.
        scales: crop scales of the teacher (e.g. ``(1.0, 1.5)``).
        top_m: proposals per image (at most).
        proposals: description of the proposal source (file path, or RPN config + weights).
        extra: free-form JSON-serialisable metadata saved at creation (not checked).
        max_open_shards: how many shards the reader keeps open (LRU).

    Reading::

        store = RegionEmbeddingStore("regions/")
        target = store.get(139)  # {"boxes": (M, 4), "embeddings": (M, D), "scores": (M,)|None}

    Writing (see :meth:`writer`)::

        with store.writer(rank=0, shard_size=256) as w:
            w.add(139, boxes, embeddings, scores)
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        teacher: str | None = None,
        dim: int | None = None,
        dtype: str | None = None,
        scales: Sequence[float] | None = None,
        top_m: int | None = None,
        proposals: str | None = None,
        extra: dict[str, Any] | None = None,
        max_open_shards: int = 8,
    ) -> None:
        self.root = Path(root)
        if dtype is not None and dtype not in DTYPES:
            raise ValueError(
                f"RegionEmbeddingStore: dtype must be one of {list(DTYPES)}, got {dtype!r}"
            )
        if max_open_shards < 1:
            raise ValueError(
                f"RegionEmbeddingStore: max_open_shards must be >= 1, got {max_open_shards}"
            )
        self.max_open_shards = int(max_open_shards)
        requested = {
            "teacher": teacher,
            "dim": None if dim is None else int(dim),
            "dtype": dtype,
            "scales": None if scales is None else [float(s) for s in scales],
            "top_m": None if top_m is None else int(top_m),
            "proposals": proposals,
        }
        meta_path = self.root / METADATA_FILE
        if not meta_path.is_file():
            if teacher is None or dim is None:
                raise FileNotFoundError(
                    f"no region store at {self.root} ({METADATA_FILE} missing); to create one "
                    "pass teacher= and dim= (e.g. through `ovdet extract-regions --out DIR`)."
                )
            self._create(requested, extra or {})
        self._meta = self._read_metadata()
        self._check_metadata(requested)
        self._locations: dict[ImageId, _Location] | None = None
        self._open: OrderedDict[str, Any] = OrderedDict()

    # ------------------------------------------------------------------ metadata
    def _create(self, requested: dict[str, Any], extra: dict[str, Any]) -> None:
        if requested["dim"] < 1:
            raise ValueError(f"RegionEmbeddingStore: dim must be >= 1, got {requested['dim']}")
        (self.root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "version": VERSION, **requested, "extra": extra}
        meta["dtype"] = meta["dtype"] or "float16"
        # Several ranks may create the store at the same moment: each replaces store.json
        # atomically with its own (equal, or else caught by the check below) metadata.
        write_json(self.root / METADATA_FILE, meta, indent=2, sort_keys=True, durable=True)

    def _read_metadata(self) -> dict[str, Any]:
        path = self.root / METADATA_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); is this a region store?") from e
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        if found != FORMAT:
            raise ValueError(
                f"{path}: field 'format' is {found!r}, expected {FORMAT!r}; this directory "
                "is not a region store."
            )
        if meta.get("version") != VERSION:
            raise ValueError(
                f"{path}: store format version {meta.get('version')!r} is not supported "
                f"(this ovdet reads version {VERSION})."
            )
        for key in ("teacher", "dim", "dtype"):
            if meta.get(key) is None:
                raise ValueError(f"{path}: field {key!r} is missing.")
        if meta["dtype"] not in DTYPES:
            raise ValueError(
                f"{path}: field 'dtype' is {meta['dtype']!r}, expected one of {list(DTYPES)}."
            )
        return meta

    def _check_metadata(self, requested: dict[str, Any]) -> None:
        for key in CHECKED_KEYS:
            want = requested[key]
            if want is None:
                continue
            have = self._meta.get(key)
            if key == "scales" and have is not None:
                same = len(have) == len(want) and all(
                    math.isclose(a, b) for a, b in zip(have, want)
                )
            else:
                same = have == want
            if not same:
                raise ValueError(
                    f"region store {self.root} was made with {key}={have!r}, but {key}={want!r} "
                    "was requested; a store never mixes targets. Use a new output directory, or "
                    "the store's settings to resume it."
                )

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of ``store.json``."""
        return json.loads(json.dumps(self._meta))

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self._meta["dim"])

    @property
    def dtype(self) -> torch.dtype:
        """The dtype embeddings are stored (and returned) in."""
        return DTYPES[self._meta["dtype"]]

    @property
    def teacher(self) -> str:
        """The teacher identity the store was made with."""
        return str(self._meta["teacher"])

    # ------------------------------------------------------------------ index
    def _index_files(self) -> list[tuple[int, Path]]:
        if not self.root.is_dir():
            return []
        out = []
        for path in self.root.iterdir():
            match = _INDEX_RE.match(path.name)
            if match:
                out.append((int(match.group(1)), path))
        return sorted(out)

    def _index_entries(self, path: Path) -> Iterator[dict[str, Any]]:
        """Parsed lines of one index file; a torn LAST line (crash while appending) is ignored."""
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = data.endswith(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            torn = number == len(lines) and not complete
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError as e:
                if torn:
                    logger.warning(
                        "%s: ignoring torn last line %d (interrupted write)", path, number
                    )
                    continue
                raise ValueError(
                    f"{path}: line {number} is not valid JSON ({e}); the index is corrupt. Remove "
                    "that line (its images will be recomputed) and run again."
                ) from e
            # (valid JSON without its newline: the append stopped right before '\n'; the shard
            # was already in place, so the entry is usable)
            for key in ("shard", "ids", "counts"):
                if key not in entry:
                    raise ValueError(f"{path}: line {number}: field {key!r} is missing.")
            if len(entry["ids"]) != len(entry["counts"]):
                raise ValueError(
                    f"{path}: line {number}: {len(entry['ids'])} ids but "
                    f"{len(entry['counts'])} counts."
                )
            yield entry

    def refresh(self) -> None:
        """Re-read the index files (to see shards written by other processes since)."""
        locations: dict[ImageId, _Location] = {}
        for _, path in self._index_files():
            for entry in self._index_entries(path):
                scored = entry.get("scored") or [True] * len(entry["ids"])
                start = 0
                for image_id, count, has_scores in zip(entry["ids"], entry["counts"], scored):
                    previous = locations.get(image_id)
                    if previous is not None:
                        raise ValueError(
                            f"region store {self.root}: image id {_describe_id(image_id)} is in "
                            f"both {previous.shard} and {entry['shard']} (index {path.name}); "
                            "remove one of the index lines."
                        )
                    locations[image_id] = _Location(
                        entry["shard"], start, start + int(count), bool(has_scores)
                    )
                    start += int(count)
        self._locations = locations

    def _index(self) -> dict[ImageId, _Location]:
        if self._locations is None:
            self.refresh()
        return self._locations

    def _register(self, entry: dict[str, Any]) -> None:
        """Add a just-committed shard to the in-memory index (used by the writer)."""
        if self._locations is None:
            return  # loaded from disk on first use, entry included
        start = 0
        for image_id, count, has_scores in zip(entry["ids"], entry["counts"], entry["scored"]):
            self._locations[image_id] = _Location(
                entry["shard"], start, start + int(count), bool(has_scores)
            )
            start += int(count)

    def done_ids(self) -> set[ImageId]:
        """Ids of every image in the store, over all ranks, read fresh from disk (for resume)."""
        self.refresh()
        return set(self._locations)

    def ids(self) -> list[ImageId]:
        """Ids of the stored images (index order)."""
        return list(self._index())

    def __contains__(self, image_id: object) -> bool:
        try:
            key = normalize_image_id(image_id)
        except TypeError:
            return False
        return key in self._index()

    def __len__(self) -> int:
        return len(self._index())

    def __iter__(self) -> Iterator[ImageId]:
        return iter(self.ids())

    # ------------------------------------------------------------------ reading
    def _shard(self, rel: str) -> Any:
        handle = self._open.get(rel)
        if handle is not None:
            self._open.move_to_end(rel)
            return handle
        path = self.root / rel
        try:
            handle = safe_open(str(path), framework="pt")
        except Exception as e:  # safetensors raises its own error types
            raise OSError(
                f"region store shard {path} cannot be read ({e}); it is listed in an index file."
            ) from e
        self._open[rel] = handle
        while len(self._open) > self.max_open_shards:
            self._open.popitem(last=False)
        return handle

    def get(self, image_id: ImageId) -> dict[str, torch.Tensor | None]:
        """Teacher targets of one image.

        Args:
            image_id: the image's id (int or str; the type matters: ``5`` and ``"5"`` differ).

        Returns:
            dict with ``boxes`` (M, 4) float32 XYXY in original image pixels, ``embeddings``
            (M, D) in the store's dtype (row i belongs to box i), ``scores`` (M,) float32 or
            None when the image was added without scores.

        Raises:
            KeyError: the image is not in the store.
        """
        key = normalize_image_id(image_id)
        loc = self._index().get(key)
        if loc is None:
            other = str(key) if isinstance(key, int) else (int(key) if key.isdigit() else None)
            hint = ""
            if other is not None and other in self._index():
                hint = f"; the store has {_describe_id(other)} - ids keep their type"
            raise KeyError(f"image id {_describe_id(key)} is not in region store {self.root}{hint}")
        if loc.end == loc.start:
            return {
                "boxes": torch.zeros(0, 4),
                "embeddings": torch.zeros(0, self.dim, dtype=self.dtype),
                "scores": torch.zeros(0) if loc.scored else None,
            }
        handle = self._shard(loc.shard)
        out = {
            "boxes": handle.get_slice("boxes")[loc.start : loc.end],
            "embeddings": handle.get_slice("embeddings")[loc.start : loc.end],
            "scores": handle.get_slice("scores")[loc.start : loc.end] if loc.scored else None,
        }
        return out

    def __getitem__(self, image_id: ImageId) -> dict[str, torch.Tensor | None]:
        return self.get(image_id)

    def close(self) -> None:
        """Close the open shards."""
        self._open.clear()

    def __getstate__(self) -> dict[str, Any]:
        # open shard handles are not picklable (data loader workers re-open lazily)
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state

    # ------------------------------------------------------------------ writing
    def writer(self, rank: int = 0, shard_size: int = 256) -> RegionStoreWriter:
        """A writer for rank ``rank``; use it as a context manager.

        Args:
            rank: the writer's rank; each concurrently running writer needs its own.
            shard_size: images per shard.
        """
        return RegionStoreWriter(self, rank=rank, shard_size=shard_size)

    def __repr__(self) -> str:
        n = "?" if self._locations is None else len(self._locations)
        return (
            f"RegionEmbeddingStore(root={str(self.root)!r}, teacher={self.teacher!r}, "
            f"dim={self.dim}, dtype={self._meta['dtype']}, images={n})"
        )


class RegionStoreWriter:
    """Appends images to a :class:`RegionEmbeddingStore` for one rank (see the module docstring).

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
            match = _TMP_RE.match(path.name)
            if match and int(match.group(1)) == self.rank:
                logger.warning("removing half-written shard %s left by an interrupted run", path)
                path.unlink(missing_ok=True)

    def _first_free_seq(self) -> int:
        """1 + the largest shard number of this rank on disk (indexed or orphaned)."""
        largest = -1
        for path in self.shard_dir.iterdir():
            match = _SHARD_RE.match(path.name)
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
        where = f"image id {_describe_id(key)}"
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
