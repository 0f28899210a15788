"""The OV-Shapes benchmark over a suite of worlds: one command, one report.

:func:`run_suite` runs :func:`~ovdet.benchmarks.ov_shapes.runner.run_benchmark` once per world
of :mod:`ovdet.data.synthetic.worlds` (each world is generated into its own sub-folder of
``out``, with its own teachers, one per seed, and every method and seed), then combines the
per-world reports into ``out/suite_report.json``: per world the teacher and the methods per
seed with their mean and std over seeds and, when ``vild_text`` ran, every other method's
gain over it (paired by seed); per method the mean over worlds of its per-world means and of
its gains, and the smallest gain.

Every world is an ordinary benchmark folder, so everything resumes as in the single-world
benchmark: a second call reuses the finished data, teachers and detector runs. Worlds can also
run as separate processes on one ``out`` (``--suite textures`` and ``--suite photo`` side by
side), and a last call with every world writes the combined report from the finished runs.

Layout of ``out``::

    <world>/                   a benchmark folder (data/, seed<k>/..., report.json)
    suite_report.json          the returned report
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ovdet.benchmarks.ov_shapes.runner import BenchmarkSettings, run_benchmark
from ovdet.benchmarks.resources import StageTimer, environment, peak_memory_mb
from ovdet.data.synthetic.dataset import load_split
from ovdet.data.synthetic.worlds import World, resolve_worlds
from ovdet.utils.device import resolve_device
from ovdet.utils.io import write_json

__all__ = ["SUITE_REPORT", "combine_reports", "run_suite"]

logger = logging.getLogger("ovdet.bench")

SUITE_REPORT = "suite_report.json"
SUITE_VERSION = 1
BASELINE = "vild_text"
METHOD_KEYS = ("AP50_base", "AP50_novel", "AP50", "AP")
GAIN_KEYS = ("AP50_base", "AP50_novel")


def run_suite(
    settings: BenchmarkSettings,
    worlds: Sequence[str | World],
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark in every world and write ``settings.out/suite_report.json``.

    Args:
        settings: what to run in each world (``out`` is the suite's folder; ``data``,
            ``generator`` and ``export_demo`` must be unset: the worlds set the generator).
        worlds: world names of :data:`ovdet.data.synthetic.worlds.WORLDS` (``"standard"``
            for the default suite, ``"all"`` for every world) or :class:`World` objects.
        log: progress sink (default: the ``ovdet.bench`` logger); lines are prefixed with
            the world's name.

    Returns:
        The report (see :func:`combine_reports`).
    """
    log = log or logger.info
    for key in ("data", "generator", "export_demo"):
        if getattr(settings, key) is not None:
            raise ValueError(
                f"a suite generates its worlds: {key} must be unset, got {getattr(settings, key)!r}"
            )
    chosen = resolve_worlds(worlds)
    out = Path(settings.out).absolute()
    timer = StageTimer()
    reports: dict[str, dict[str, Any]] = {}
    for world in chosen:
        log(f"[{world.name}] {world.description}")
        world_settings = replace(settings, out=out / world.name, generator=dict(world.params))
        with timer(world.name):
            reports[world.name] = run_benchmark(
                world_settings, log=lambda msg, name=world.name: log(f"[{name}] {msg}")
            )
    report = combine_reports(settings, chosen, reports, out)
    report["environment"] = environment(resolve_device(settings.device))
    report["time_s"] = {**timer.seconds, "total": timer.total()}
    report["memory_mb"] = peak_memory_mb()
    write_json(out / SUITE_REPORT, report, indent=2)
    return report


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.fmean(vals), 4) if vals else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def _gains(runs: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed gains of ``runs`` over ``baseline`` (paired by seed) and their mean."""
    base = {r["seed"]: r for r in baseline}
    per_seed = [
        {"seed": r["seed"], **{k: _diff(r.get(k), base[r["seed"]].get(k)) for k in GAIN_KEYS}}
        for r in runs
        if r["seed"] in base
    ]
    return {"per_seed": per_seed, "mean": {k: _mean([g[k] for g in per_seed]) for k in GAIN_KEYS}}


def _world_entry(world: World, report: dict[str, Any], image_size: int) -> dict[str, Any]:
    split = load_split(report["data"]["root"])
    methods = {
        name: {key: m[key] for key in ("per_seed", "mean", "std")}
        for name, m in report["methods"].items()
    }
    entry = {
        "description": world.description,
        "generator": world.config(image_size).to_dict(),
        "classes": {
            "num_classes": len(split["categories"]),
            "num_base": len(split["base"]),
            "num_novel": len(split["novel"]),
            "novel": list(split["novel"]),
        },
        "folder": world.name,
        "data": report["data"],
        "teacher": report["teacher"],
        "methods": methods,
        "time_s": report["time_s"],
    }
    if BASELINE in methods:
        entry[f"gain_over_{BASELINE}"] = {
            name: _gains(m["per_seed"], methods[BASELINE]["per_seed"])
            for name, m in methods.items()
            if name != BASELINE
        }
    return entry


def combine_reports(
    settings: BenchmarkSettings,
    worlds: Sequence[World],
    reports: dict[str, dict[str, Any]],
    out: Path,
) -> dict[str, Any]:
    """The suite report of per-world benchmark reports.

    Returns:
        ``{"benchmark": "ov-shapes-suite", "version", "settings" (with ``suite``: the world
        names), "worlds": {world: {"description", "generator" (the OVShapesConfig as in
        split.json), "classes" (counts, novel names), "folder", "data" (the world report's:
        root, generated or reused), "teacher" (per_seed, mean,
        std), "methods": {method: {"per_seed", "mean", "std"}}, "gain_over_vild_text":
        {method: {"per_seed": [{"seed", "AP50_base", "AP50_novel"}], "mean"}}, "time_s" (the
        world's stages)}},
        "methods": {method: {"description", "config", "per_world": {world: mean over
        seeds}, "mean_over_worlds", "gain_over_vild_text": {"per_world": {world: mean
        gain}, "mean", "min"}}}}``; :func:`run_suite` adds ``environment``, ``time_s``
        (per world and total) and ``memory_mb``. Gains are absent without ``vild_text``.
    """
    entries = {w.name: _world_entry(w, reports[w.name], settings.image_size) for w in worlds}
    methods: dict[str, Any] = {}
    first = reports[worlds[0].name]["methods"]
    for name, info in first.items():
        per_world = {w: e["methods"][name]["mean"] for w, e in entries.items()}
        summary: dict[str, Any] = {
            "description": info["description"],
            "config": info["config"],
            "per_world": per_world,
            "mean_over_worlds": {k: _mean([m[k] for m in per_world.values()]) for k in METHOD_KEYS},
        }
        key = f"gain_over_{BASELINE}"
        if name != BASELINE and BASELINE in first:
            gains = {w: e[key][name]["mean"] for w, e in entries.items()}
            summary[key] = {
                "per_world": gains,
                "mean": {k: _mean([g[k] for g in gains.values()]) for k in GAIN_KEYS},
                "min": {
                    k: min((g[k] for g in gains.values() if g[k] is not None), default=None)
                    for k in GAIN_KEYS
                },
            }
        methods[name] = summary
    public = settings.public()
    public["out"] = str(out)
    public["suite"] = [w.name for w in worlds]
    return {
        "benchmark": "ov-shapes-suite",
        "version": SUITE_VERSION,
        "settings": public,
        "worlds": entries,
        "methods": methods,
    }
