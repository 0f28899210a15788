"""Numbers of the OV-Shapes report: finite floats, mean and std over seeds, the metric keys
reported per method (box AP, and the mask head's ``segm_*``), and their printed forms."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["SEGM_KEYS", "finite", "fmt", "method_keys", "pct", "summarise"]


def finite(x: Any) -> float | None:
    """``x`` as a float, or None for None, NaN and infinities (json has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return round(mean, 4), round(std, 4)


# mask metrics reported beside the box ones, as ``segm_<key>`` (methods with a mask head)
SEGM_KEYS = ("AP50_base", "AP50_novel", "AP50", "AP_base", "AP_novel", "AP")


def summarise(per_seed: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """``{"mean": {k: ..}, "std": {k: ..}}`` over seeds (sample std; 0 for one seed)."""
    mean, std = {}, {}
    for key in keys:
        mean[key], std[key] = _mean_std([r.get(key) for r in per_seed])
    return {"mean": mean, "std": std}


def method_keys(runs: list[dict[str, Any]]) -> tuple[str, ...]:
    """Box AP keys, and mask AP keys where every seed has them (older runs are reused without)."""
    segm = (f"segm_{k}" for k in SEGM_KEYS)
    return (
        "AP50_base",
        "AP50_novel",
        "AP50",
        "AP",
        *(k for k in segm if all(k in r for r in runs)),
    )


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"
