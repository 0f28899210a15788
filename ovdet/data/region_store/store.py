"""``RegionEmbeddingStore``: opening, checking and reading a region store (see the package)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ovdet.data.region_store.layout import (
    CHECKED_KEYS,
    DTYPES,
    FORMAT,
    INDEX_RE,
    METADATA_FILE,
    SHARD_DIR,
    VERSION,
    ImageId,
    describe_id,
    normalize_image_id,
)
from ovdet.data.region_store.writer import RegionStoreWriter
from ovdet.utils.io import write_json

__all__ = ["RegionEmbeddingStore"]

logger = logging.getLogger(__name__)


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
            match = INDEX_RE.match(path.name)
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
                            f"region store {self.root}: image id {describe_id(image_id)} is in "
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
                hint = f"; the store has {describe_id(other)} - ids keep their type"
            raise KeyError(f"image id {describe_id(key)} is not in region store {self.root}{hint}")
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
