"""Wall time per stage and peak memory, for benchmark reports."""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["StageTimer", "environment", "peak_memory_mb"]


def _maxrss_mb(who: int) -> float:
    rss = resource.getrusage(who).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def peak_memory_mb() -> dict[str, float | None]:
    """Peak memory so far, in MiB.

    Returns:
        ``{"rss_self": peak resident set of this process, "rss_children": largest peak of
        any waited-for child process (e.g. DataLoader workers), "cuda": peak CUDA memory
        allocated by torch on the current device, or None without CUDA}``.
    """
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.max_memory_allocated() / 2**20
    return {
        "rss_self": round(_maxrss_mb(resource.RUSAGE_SELF), 1),
        "rss_children": round(_maxrss_mb(resource.RUSAGE_CHILDREN), 1),
        "cuda": None if cuda is None else round(cuda, 1),
    }


class StageTimer:
    """Accumulates wall time per named stage.

    Example::

        timer = StageTimer()
        with timer("teacher"):
            ...
        timer.seconds  # {"teacher": 12.3}
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + elapsed, 2)

    def total(self) -> float:
        """Seconds since the timer was created."""
        return round(time.perf_counter() - self._start, 2)


def environment(device: str) -> dict[str, object]:
    """Versions, cores and device of this run (for the report)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info
