"""The files ``ovdet detect`` writes into its output folder, and its journal."""

from __future__ import annotations

import json
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
