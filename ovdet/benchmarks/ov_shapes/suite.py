"""The OV-Shapes benchmark over a suite of worlds: one command, one report.

:func:`run_suite` runs :func:`~ovdet.benchmarks.ov_shapes.runner.run_benchmark` once per world
of :mod:`ovdet.data.synthetic.worlds` (each world is generated into its own sub-folder of
``out``, with its own teachers, one per seed, and every method and seed), then combines the
per-world reports into ``out/suite_report.json``: per world the teacher and the methods per
seed with their mean and std over seeds and, when ``vild_text`` ran, every other method's
gain over it (paired by seed); per method the mean over worlds of its per-world means and of
its gains, and the smallest gain; and ``method_choice``, the recommended distillation method
by the rule fixed in advance (:mod:`~ovdet.benchmarks.ov_shapes.choice`).

Worlds run apart (other days, other machines) are combined with :func:`merge_suite_reports`
(``ovdet bench ov-shapes --merge a/suite_report.json b/suite_report.json --out DIR``).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ovdet.benchmarks.ov_shapes.choice import BASELINE, choose_method
from ovdet.benchmarks.ov_shapes.runner import BenchmarkSettings, run_benchmark
from ovdet.benchmarks.resources import StageTimer, environment, peak_memory_mb
from ovdet.data.synthetic.dataset import load_split
from ovdet.data.synthetic.worlds import World, resolve_worlds
from ovdet.utils.device import resolve_device
from ovdet.utils.io import write_json

__all__ = ["SUITE_REPORT", "combine_reports", "merge_suite_reports", "run_suite"]

logger = logging.getLogger("ovdet.bench")

SUITE_REPORT = "suite_report.json"
SUITE_VERSION = 1
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
    if "self_train" in report:
        entry["self_train"] = report["self_train"]
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
        gain}, "mean", "min"}}}, "method_choice": the rule of ``docs/results/method_choice.md``
        applied by :func:`~ovdet.benchmarks.ov_shapes.choice.choose_method`}``; a method that
        ran in some worlds only is summarised over those; :func:`run_suite` adds
        ``environment``, ``time_s`` (per world and total) and ``memory_mb``. Gains are
        absent without ``vild_text``.
    """
    entries = {w.name: _world_entry(w, reports[w.name], settings.image_size) for w in worlds}
    info = {n: i for r in reports.values() for n, i in _method_info(r["methods"]).items()}
    public = settings.public()
    public["out"] = str(out)
    public["suite"] = [w.name for w in worlds]
    return _suite_report(public, entries, info)


def _method_info(methods: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Each method's description and config, as the report's method summary carries them."""
    return {n: {"description": m["description"], "config": m["config"]} for n, m in methods.items()}


def _methods_section(
    entries: Mapping[str, Mapping[str, Any]], info: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """Per method over the worlds that ran it: per-world means, their mean, the gains."""
    key = f"gain_over_{BASELINE}"
    names = list(dict.fromkeys(n for e in entries.values() for n in e["methods"]))
    methods: dict[str, Any] = {}
    for name in names:
        ran = {w: e for w, e in entries.items() if name in e["methods"]}
        per_world = {w: e["methods"][name]["mean"] for w, e in ran.items()}
        summary: dict[str, Any] = {
            **info[name],
            "per_world": per_world,
            "mean_over_worlds": {k: _mean([m[k] for m in per_world.values()]) for k in METHOD_KEYS},
        }
        gains = {w: e[key][name]["mean"] for w, e in ran.items() if name in e.get(key, {})}
        if name != BASELINE and gains:
            summary[key] = {
                "per_world": gains,
                "mean": {k: _mean([g[k] for g in gains.values()]) for k in GAIN_KEYS},
                "min": {
                    k: min((g[k] for g in gains.values() if g[k] is not None), default=None)
                    for k in GAIN_KEYS
                },
            }
        methods[name] = summary
    return methods


def _suite_report(
    public: dict[str, Any],
    entries: dict[str, Any],
    info: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    report = {
        "benchmark": "ov-shapes-suite",
        "version": SUITE_VERSION,
        "settings": public,
        "worlds": entries,
        "methods": _methods_section(entries, info),
    }
    report["method_choice"] = choose_method(report)
    self_train = _self_train_section(entries)
    if self_train:
        report["self_train"] = self_train
    return report


ST_PARTS = ("student", "control")
ST_GAINS = ("gain_over_teacher", "gain_over_control")


def _self_train_section(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per self-trained method: per world and round the means over seeds (teacher, student,
    control, gains), and per round their mean over the worlds and the smallest gains."""
    section = {}
    names = dict.fromkeys(
        n for e in entries.values() for n in e.get("self_train", {}).get("methods", {})
    )
    for name in names:
        per_world: dict[str, Any] = {}
        for world, e in entries.items():
            m = e.get("self_train", {}).get("methods", {}).get(name)
            if m is None:
                continue
            rounds = {
                r: {
                    **{k: v[k]["mean"] for k in ST_PARTS if k in v},
                    **{k: v[k] for k in ST_GAINS if k in v},
                }
                for r, v in m["rounds"].items()
            }
            per_world[world] = {"teacher": m["teacher"]["mean"], "rounds": rounds}
        over: dict[str, Any] = {}
        for r in sorted({r for w in per_world.values() for r in w["rounds"]}, key=int):
            ran = [w["rounds"][r] for w in per_world.values() if r in w["rounds"]]
            entry: dict[str, Any] = {"worlds": len(ran)}
            for part in (*ST_PARTS, *ST_GAINS):
                have = [x[part] for x in ran if part in x]
                if len(have) == len(ran):
                    entry[part] = {k: _mean([h.get(k) for h in have]) for k in GAIN_KEYS}
            for part in ST_GAINS:
                if part in entry:
                    entry[f"min_{part}"] = {
                        k: min((x[part][k] for x in ran if x[part][k] is not None), default=None)
                        for k in GAIN_KEYS
                    }
            over[r] = entry
        section[name] = {"per_world": per_world, "mean_over_worlds": over}
    return section


# settings that must agree between suite reports merged into one (what a world's numbers
# depend on besides its generator, methods and seeds)
MERGE_KEYS = (
    "num_train",
    "num_val",
    "image_size",
    "data_seed",
    "teacher_epochs",
    "teacher_steps",
    "teacher_batch_size",
    "det_iters",
    "det_batch_size",
)


# and, between reports that self-trained, the students' recipe
ST_MERGE_KEYS = ("self_train_iters", "self_train_seed")


def merge_suite_reports(
    reports: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """One suite report from suite reports of other worlds (runs made apart, e.g. one world
    per machine or per day), with the method summaries and the method choice recomputed.

    Args:
        reports: suite reports (``suite_report.json`` contents).
        names: how to name each report in errors (file paths; default ``report 0``, ...).

    Raises:
        ValueError: not a suite report, a world in two reports, or settings that differ in
            :data:`MERGE_KEYS` (the reports name the culprit and the differing values).
    """
    names = list(names) if names is not None else [f"report {i}" for i in range(len(reports))]
    if not reports:
        raise ValueError("no suite report to merge")
    for name, r in zip(names, reports, strict=True):
        if r.get("benchmark") != "ov-shapes-suite" or "worlds" not in r:
            raise ValueError(
                f"{name}: not an ov-shapes suite report (benchmark={r.get('benchmark')!r}); "
                "pass the suite_report.json written by `ovdet bench ov-shapes --suite`"
            )
    first = reports[0]["settings"]
    trained = [(n, r["settings"]) for n, r in zip(names, reports, strict=True) if "self_train" in r]
    for name, r in zip(names[1:], reports[1:], strict=True):
        differ = {k: (first.get(k), r["settings"].get(k)) for k in MERGE_KEYS}
        differ = {k: v for k, v in differ.items() if v[0] != v[1]}
        if differ:
            raise ValueError(
                f"{name}: settings differ from {names[0]}'s, so its worlds are not comparable: "
                + ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in differ.items())
            )
    for name, settings in trained[1:]:  # self-training compared across worlds: one recipe
        differ = {k: (trained[0][1].get(k), settings.get(k)) for k in ST_MERGE_KEYS}
        differ = {k: v for k, v in differ.items() if v[0] != v[1]}
        if differ:
            raise ValueError(
                f"{name}: its students were trained otherwise than {trained[0][0]}'s, so their "
                "self-training is not comparable: "
                + ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in differ.items())
            )
    entries: dict[str, Any] = {}
    info: dict[str, Any] = {}
    sources = []
    for name, r in zip(names, reports, strict=True):
        for world, entry in r["worlds"].items():
            if world in entries:
                raise ValueError(
                    f"{name}: world {world!r} is also in an earlier report; merge each world once"
                )
            entries[world] = entry
        info.update(_method_info(r["methods"]))
        sources.append(
            {
                "report": str(name),
                "worlds": list(r["worlds"]),
                "command": r.get("command") or r["settings"].get("export_command"),
                "environment": r.get("environment"),
                "time_s": r.get("time_s"),
            }
        )
    public = dict(reports[0]["settings"])
    public["suite"] = list(entries)
    public["seeds"] = sorted({s for r in reports for s in r["settings"].get("seeds", [])})
    public["methods"] = (
        list(dict.fromkeys(m for r in reports for m in (r["settings"].get("methods") or [])))
        or None
    )
    report = _suite_report(public, entries, info)
    report["merged_from"] = sources
    times = {w: e.get("time_s", {}).get("total") for w, e in entries.items()}
    report["time_s"] = {**times, "total": round(sum(t for t in times.values() if t), 2)}
    return report
