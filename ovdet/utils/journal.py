"""An append-only journal of per-image results, for runs that resume where they stopped.

One json line per image, appended and fsynced per batch (the commit point of those images);
the last line of an image wins (an error retried later). Only where each image's line starts
is kept in memory, never the results: a run over millions of images holds an offset per image,
and its final files are built by reading the lines back (:meth:`Journal.reader`). A line torn
by a kill mid-write is cut off on opening; a line naming another file than the run's image of
that id means the folder mixes runs and is refused. Used by ``ovdet detect``
(``results.jsonl``) and ``ovdet pseudo-label`` (``labels.jsonl``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError

__all__ = ["Journal"]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Journal:
    """One json line per image: ``{"image_id", "file_name", ...}`` (a result) or
    ``{"image_id", "file_name", "error"}``; the last line of an image wins.

    Args:
        path: the journal file.
        file_names: image id -> file name of the run (a line naming another file means the
            folder mixes runs: refused).
    """

    def __init__(self, path: Path, file_names: dict[int, str]) -> None:
        self.path = Path(path)
        self.offsets: dict[int, int] = {}  # image id -> where its last line starts
        self.failed: set[int] = set()
        self._file_names = file_names
        self._scan()

    def _scan(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb+") as f:
            offset = 0
            for line in f:
                if not line.endswith(b"\n"):  # torn by a kill mid-write: cut it off
                    f.truncate(offset)
                    os.fsync(f.fileno())
                    break
                self._index(line, offset)
                offset += len(line)

    def _index(self, line: bytes, offset: int) -> None:
        try:
            entry = json.loads(line)
            image_id = int(entry["image_id"])
        except (ValueError, KeyError, TypeError):
            return  # not a record: that image is labelled again
        if self._file_names.get(image_id) != entry.get("file_name"):
            raise InputError(
                f"{self.path} records image {image_id} as {entry.get('file_name')!r}, which is "
                "not that image of this run; the folder mixes runs: pass --overwrite to start "
                "over"
            )
        self.offsets[image_id] = offset
        if "error" in entry:
            self.failed.add(image_id)
        else:
            self.failed.discard(image_id)

    def done(self) -> set[int]:
        """Images labelled (not those that failed: a new run retries them)."""
        return set(self.offsets) - self.failed

    def append(self, entries: Sequence[dict[str, Any]]) -> None:
        """Add the lines of ``entries`` and fsync: the commit point of those images."""
        if not entries:
            return
        lines = [(_dumps(e) + "\n").encode("utf-8") for e in entries]
        with open(self.path, "ab") as f:
            start = f.seek(0, os.SEEK_END)
            f.write(b"".join(lines))
            f.flush()
            os.fsync(f.fileno())
        for line in lines:
            self._index(line, start)
            start += len(line)

    def reader(self, stack: ExitStack) -> Callable[[int], dict[str, Any]]:
        """A function image id -> its journal entry, reading the file (opened in ``stack``)."""
        f = stack.enter_context(open(self.path, "rb"))

        def read(image_id: int) -> dict[str, Any]:
            f.seek(self.offsets[image_id])
            return json.loads(f.readline())

        return read
