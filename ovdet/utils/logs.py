"""Progress logs of ovdet and detectron2 on stderr, for commands that print results on stdout."""

from __future__ import annotations

import logging
import sys

__all__ = ["log_progress_to_stderr"]


def log_progress_to_stderr() -> None:
    """INFO logs of the ``ovdet`` and ``detectron2`` loggers to stderr, set up once per process
    however often a command's ``main`` runs (stdout carries the command's report)."""
    formatter = logging.Formatter("[%(asctime)s %(name)s]: %(message)s", "%m/%d %H:%M:%S")
    for name in ("ovdet", "detectron2"):
        log = logging.getLogger(name)
        log.setLevel(logging.INFO)
        log.propagate = False
        if not any(getattr(h, "ovdet_progress", False) for h in log.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(formatter)
            handler.ovdet_progress = True
            log.addHandler(handler)
