"""Shared settings of the OV-Shapes benchmark tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bench():
    """BenchmarkSettings keyword arguments of a tiny run (seconds on CPU); copy to change."""
    return dict(
        num_train=16,
        num_val=8,
        image_size=96,
        teacher_steps=5,
        teacher_batch_size=32,
        det_iters=4,
        det_batch_size=2,
        num_workers=0,
        threads=1,
        progress=False,
    )


def _world_report(
    root: Path,
    numbers: dict[str, list[tuple[float, float]]],
    seconds_per_iter: dict[str, float] | None = None,
) -> dict:
    """A world report with per-seed (AP50_base, AP50_novel) for each method, seeds 0, 1, ...;
    ``seconds_per_iter`` gives a method's training time over 100 iterations."""
    root.mkdir(parents=True)
    split = {"categories": [{"id": 1}, {"id": 2}], "base": ["a"], "novel": ["b"]}
    (root / "split.json").write_text(json.dumps(split))
    methods = {}
    for name, pairs in numbers.items():
        rate = (seconds_per_iter or {}).get(name)
        per_seed = [
            {"seed": s, "AP50_base": b, "AP50_novel": n, "AP50": None, "AP": None}
            | ({"train_time_s": 100 * rate, "iterations": 100} if rate is not None else {})
            for s, (b, n) in enumerate(pairs)
        ]
        mean = {
            "AP50_base": sum(b for b, _ in pairs) / len(pairs),
            "AP50_novel": sum(n for _, n in pairs) / len(pairs),
        }
        methods[name] = {
            "description": name,
            "config": f"{name}.py",
            "per_seed": per_seed,
            "mean": {**mean, "AP50": None, "AP": None},
            "std": {},
        }
    return {"data": {"root": str(root)}, "teacher": {}, "methods": methods, "time_s": {}}


@pytest.fixture
def fake_world_report():
    """Builds a benchmark world report from numbers (see :func:`_world_report`)."""
    return _world_report
