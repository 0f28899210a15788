"""Resuming a training run: the last intact checkpoint, and a ``metrics.json`` without repeats.

A run folder (``train.output_dir``) holds ``last_checkpoint`` (the name of the newest
checkpoint), ``model_XXXXXXX.pth`` / ``model_final.pth`` and ``metrics.json`` (one JSON line
per logged iteration). ``ovdet train --resume`` continues from the newest checkpoint that can
be read; checkpoints that cannot (truncated by a full disk or an interrupted copy, corrupt)
are skipped with a log line saying why. Lines of ``metrics.json`` for iterations that the
resumed run trains again are dropped first, so every iteration is logged once.

A caller that trains into a folder again and again with changing settings (the OV-Shapes
benchmark) claims it with :func:`claim_run_folder`: a run resumes only from checkpoints written
under the same key, never from another run's.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ovdet.engine.checkpoint import (
    CheckpointFormatError,
    OVDetectionCheckpointer,
)
from ovdet.utils.io import atomic_write_text

__all__ = [
    "checkpoint_candidates",
    "claim_run_folder",
    "drop_metrics_from",
    "resume_last_intact",
]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CLAIM_FILE = "started.json"


def checkpoint_candidates(save_dir: str | os.PathLike, prefix: str = "model") -> list[Path]:
    """The checkpoints of a run folder, newest first: the one ``last_checkpoint`` names, then
    ``<prefix>_*.pth`` by modification time (newest first)."""
    folder = Path(save_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"{prefix}_*.pth") if p.is_file()]
    found.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    tag = folder / "last_checkpoint"
    if tag.is_file():
        last = folder / tag.read_text(encoding="utf-8").strip()
        if last.is_file():
            found = [last] + [p for p in found if p != last]
    return found


def resume_last_intact(checkpointer: OVDetectionCheckpointer) -> Path | None:
    """Load the newest readable checkpoint of ``checkpointer.save_dir`` with its
    checkpointables (optimizer, scheduler, trainer iteration).

    Returns:
        The checkpoint used, or None when the folder holds none.

    Raises:
        CheckpointFormatError: every checkpoint is unreadable (each named with the reason).
        CheckpointMismatchError: the newest readable one does not fit the model (the config
            changed since it was written); older ones are not tried.
    """
    candidates = checkpoint_candidates(checkpointer.save_dir)
    skipped: list[str] = []
    for path in candidates:
        try:
            checkpointer.load(str(path))
        except CheckpointFormatError as exc:
            skipped.append(f"{path.name} ({exc.reason})")
            logger.warning("resume: skipping unreadable checkpoint %s: %s", path, exc)
            continue
        if skipped:
            logger.warning(
                "resume: resuming from %s; skipped newer unreadable checkpoints: %s",
                path,
                "; ".join(skipped),
            )
        else:
            logger.info("resume: resuming from %s", path)
        return path
    if candidates:
        raise CheckpointFormatError(
            f"--resume: no intact checkpoint in {checkpointer.save_dir}: "
            + "; ".join(skipped)
            + ". Move these files away to train from train.init_checkpoint again, or restore "
            "an intact checkpoint there"
        )
    return None


def drop_metrics_from(output_dir: str | os.PathLike, start_iter: int) -> int:
    """Remove the lines of ``<output_dir>/metrics.json`` whose iteration is >= ``start_iter``
    (they are trained again), and lines that are not JSON (a write cut by a kill); atomic.

    Returns:
        The number of lines dropped.
    """
    path = Path(output_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            iteration = int(json.loads(line)["iteration"])
        except (ValueError, KeyError, TypeError):
            dropped += 1
            continue
        if iteration >= start_iter:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept), durable=True)
        logger.info(
            "%s: dropped %d lines of iterations >= %d (trained again)", path, dropped, start_iter
        )
    return dropped


def claim_run_folder(output_dir: str | os.PathLike, key: Any, prefix: str = "model") -> bool:
    """Claim ``output_dir`` for a training under ``key`` (JSON data naming what is trained);
    whether that training should resume.

    True when ``<output_dir>/started.json`` holds ``key`` and a checkpoint is there: the folder's
    checkpoints are this key's, left by a killed run. Otherwise the folder's checkpoints (and
    ``last_checkpoint``) belong to another run or to none: they are removed, so that neither this
    run's resume nor a later one can load them, and ``key`` is recorded before training starts.
    """
    folder = Path(output_dir)
    claim = folder / CLAIM_FILE
    try:
        held = json.loads(claim.read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        held = None  # absent, torn or not ours: not a claim
    found = checkpoint_candidates(folder, prefix)
    if found and held == json.loads(json.dumps(key)):
        return True
    for path in [*found, folder / "last_checkpoint"]:  # another run's (or none): never resumed
        path.unlink(missing_ok=True)
    if found:
        logger.info("%s: removed %d checkpoints of another run", folder, len(found))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(claim, json.dumps({"key": key}, indent=2), durable=True)
    return False
