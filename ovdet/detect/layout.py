"""The files ``ovdet detect`` writes into its output folder, and its journal."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError
from ovdet.utils.io import fsync_dir

FORMAT = "ovdet-detect-run"
VERSION = 1
MANIFEST = "run.json"
JOURNAL = "results.jsonl"
FINAL_FILES = ("results.json", "detections.json", "errors.json")
VIS_DIR = "vis"
_VIS_RE = re.compile(r"^\d{6,}_.*\.png$")
_OWN_FILES = (MANIFEST, JOURNAL, *FINAL_FILES)


# ---------------------------------------------------------------------- the output folder
def read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path} is not a readable run manifest ({exc}); pass --overwrite to start over in "
            f"{out}, or choose another --output"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(
            f"{path} was not written by ovdet detect (no format {FORMAT!r}); pass --overwrite "
            "to replace it, or choose another --output"
        )
    if data.get("version") != VERSION:
        raise InputError(
            f"{path} is a version {data.get('version')!r} manifest; this ovdet resumes version "
            f"{VERSION}: pass --overwrite to start over, or choose another --output"
        )
    return data


def vis_files(out: Path) -> list[Path]:
    vis = out / VIS_DIR
    if not vis.is_dir():
        return []
    return sorted(p for p in vis.iterdir() if _VIS_RE.match(p.name))


def present_outputs(out: Path) -> list[str]:
    found = [name for name in _OWN_FILES if (out / name).exists()]
    if vis_files(out):
        found.append(f"{VIS_DIR}/*.png")
    return found


def remove_stray_temporaries(out: Path) -> None:
    """Temporary files of atomic writes killed mid-way (``.<name>.*.tmp``)."""
    for folder in (out, out / VIS_DIR):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                if any(p.name.startswith(f".{n}.") for n in _OWN_FILES) or folder.name == VIS_DIR:
                    p.unlink(missing_ok=True)


def clear_outputs(out: Path) -> None:
    """Delete this module's outputs in ``out`` (nothing else)."""
    for name in _OWN_FILES:
        (out / name).unlink(missing_ok=True)
    for p in vis_files(out):
        p.unlink()
    remove_stray_temporaries(out)
    fsync_dir(out)


class Journal:
    """``results.jsonl``: append-only, one json line per image, fsynced per batch."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._file_names = {img["id"]: img["file_name"] for img in manifest["images"]}
        self.entries: dict[int, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # a torn last line (killed mid-write): cut it
            keep = data.rfind(b"\n") + 1
            with open(self.path, "rb+") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
            data = data[:keep]
        for line_no, line in enumerate(data.splitlines(), start=1):
            try:
                entry = json.loads(line)
                image_id = int(entry["image_id"])
            except (ValueError, KeyError, TypeError):
                continue  # not a finished record: that image is done again
            if self._file_names.get(image_id) != entry.get("file_name"):
                raise InputError(
                    f"{self.path} line {line_no} records image {image_id} "
                    f"({entry.get('file_name')!r}), which is not that image of run.json; the "
                    "folder mixes runs: pass --overwrite to start over"
                )
            self.entries[image_id] = entry

    def done(self) -> set[int]:
        return {i for i, e in self.entries.items() if "error" not in e}

    def append(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
        with open(self.path, "ab") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        for e in entries:
            self.entries[int(e["image_id"])] = e
