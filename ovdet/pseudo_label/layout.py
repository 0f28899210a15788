"""The files of a pseudo-label run folder, its manifest and the comparison of two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError
from ovdet.utils.io import fsync_dir

from .writer import ERRORS, OUTPUT, SUMMARY

FORMAT = "ovdet-pseudo-label-run"
VERSION = 1
MANIFEST = "run.json"
JOURNAL = "labels.jsonl"
SHARDS = "shards"
FINAL_FILES = (OUTPUT, SUMMARY, ERRORS)
OWN_FILES = (MANIFEST, JOURNAL, *FINAL_FILES)


def shard_folder(out: Path, index: int) -> Path:
    return out / SHARDS / str(index)


def read_run_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's ``run.json`` (None when it has none).

    Raises:
        InputError: a manifest that is unreadable or not a pseudo-label run of this version.
    """
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        data = {"unreadable": str(exc)}
    if not isinstance(data, dict) or (data.get("format"), data.get("version")) != (
        FORMAT,
        VERSION,
    ):
        raise InputError(
            f"{path} is not the manifest of an ovdet pseudo-label run (format {FORMAT!r}, "
            f"version {VERSION}); pass --overwrite to start over there, or choose another "
            "--output"
        )
    return data


def clear_run(folder: Path) -> None:
    """Delete this run's files in ``folder`` (nothing else), stray temporaries included."""
    for name in OWN_FILES:
        (folder / name).unlink(missing_ok=True)
    for tmp in folder.glob(".*.tmp"):
        if any(tmp.name.startswith(f".{name}.") for name in OWN_FILES):
            tmp.unlink(missing_ok=True)
    fsync_dir(folder)


def has_work(folder: Path) -> bool:
    journal = folder / JOURNAL
    return (journal.is_file() and journal.stat().st_size > 0) or any(
        (folder / n).exists() for n in FINAL_FILES
    )


def setting_diffs(old: dict[str, Any], new: dict[str, Any], *, shard: bool = True) -> list[str]:
    """What differs between two runs: the settings ``ovdet detect`` compares (model, config,
    weights, vocabulary, score threshold, images), then the filters, captions and shards."""
    from ovdet.detect.checks import compare_settings

    def as_detect(manifest: dict[str, Any]) -> dict[str, Any]:
        return dict(manifest, settings=dict(manifest.get("settings", {}), vis=False))

    diffs = compare_settings(as_detect(old), as_detect(new))
    o, n = old.get("settings", {}), new["settings"]
    for key in ("filters", "input_kind"):
        if o.get(key) != n.get(key):
            diffs.append(f"{key.replace('_', ' ')}: {o.get(key)} vs {n.get(key)}")
    oc, nc = o.get("captions") or {}, n.get("captions") or {}
    if oc.get("sha256") != nc.get("sha256"):  # the content, wherever the file is
        diffs.append(f"captions: {oc.get('file', 'none')} vs {nc.get('file', 'none')}")
    if shard and old.get("shard") != new.get("shard"):
        diffs.append(f"shard: {old.get('shard')} vs {new.get('shard')}")
    return diffs
