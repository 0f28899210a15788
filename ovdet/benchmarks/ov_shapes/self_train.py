"""The benchmark's self-training stage: the chain measured where its teachers are.

With ``BenchmarkSettings.self_train`` naming methods (``--self-train vild_text,rkd_ensemble``),
each seed's trained detector of those methods becomes a teacher for
:func:`ovdet.self_train.run_self_train`: ``self_train_rounds`` rounds of label -> merge ->
train -> evaluate, students of ``self_train_iters`` iterations with seed ``self_train_seed``
(the same for every run seed: the run seed varies the teacher), and with
``self_train_control`` each round's gold-only control (the teacher's config trained the same
iterations on the gold boxes alone), so a student's gain can be told from the extra
iterations'. The config is the one the benchmark trained the teacher with (its data, class
embeddings, region targets and image temperature), passed as a loaded config.

Files: ``seed<k>/self_train/<method>/`` is an ``ovdet self-train`` output folder
(:mod:`ovdet.self_train`), resumable on its own; a folder left by another teacher or other
settings is started over. The report's ``self_train`` section (:func:`self_train_section`)
holds per method and seed the teacher's and each round's student and control metrics, the
merge counts, and per round the mean and std over seeds and the mean gains (paired by seed)
over the teacher and over the control.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ovdet.benchmarks.ov_shapes.summary import method_keys, summarise

__all__ = ["GAIN_KEYS", "check_self_train", "self_train_method", "self_train_section"]

GAIN_KEYS = ("AP50_base", "AP50_novel")
# methods with nothing to self-train: the oracle has every class's gold boxes already
NOT_SELF_TRAINED = ("oracle",)


def check_self_train(settings, method_names: Sequence[str]) -> None:
    """Refuse self-training settings that cannot run, before any work.

    Raises:
        ValueError: a method that is not among the run's methods or cannot be self-trained,
            or a round / iteration count below 1.
    """
    names = list(settings.self_train or ())
    if not names:
        return
    missing = [n for n in names if n not in method_names]
    if missing:
        raise ValueError(
            f"--self-train {missing} not among --methods {list(method_names)}: the teachers "
            "are the methods' trained detectors; add them to --methods"
        )
    bad = [n for n in names if n in NOT_SELF_TRAINED]
    if bad:
        raise ValueError(f"--self-train {bad}: the oracle trains on every class's boxes already")
    for key in ("self_train_rounds", "self_train_iters"):
        value = getattr(settings, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")


def self_train_method(
    settings, cfg: Any, teacher: Mapping[str, Any], weights: Path, out: Path, device: str
) -> dict[str, Any]:
    """Self-train one seed's detector (``teacher``: the method's result, ``weights``: its
    checkpoint in the run folder) and return its per-seed record."""
    from ovdet.self_train import run_self_train

    summary = run_self_train(
        config=cfg,
        weights=weights,
        output=out,
        rounds=settings.self_train_rounds,
        max_iter=settings.self_train_iters,
        seed=settings.self_train_seed,
        device=device,
        control=settings.self_train_control,
        replace_stale=True,
        progress=False,
    )
    rounds = []
    for r in summary["rounds"]:
        merge = r["merge"]
        row = {
            "round": r["round"],
            **r["metrics"],
            "merge": {k: merge.get(k) for k in ("gold", "pseudo_boxes", "ignore_regions")},
        }
        if "control" in r:
            row["control"] = r["control"]["metrics"]
        rounds.append(row)
    keys = method_keys([teacher])
    return {
        "seed": teacher["seed"],
        "teacher": {k: teacher.get(k) for k in keys},
        "rounds": rounds,
        "output_dir": str(out),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.fmean(vals), 4) if vals else None


def _gain(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, float | None]:
    return {
        k: None if a.get(k) is None or b.get(k) is None else round(a[k] - b[k], 4)
        for k in GAIN_KEYS
    }


def _rounds_summary(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per round over seeds: student (and control) mean / std, mean gains over the teacher and
    over the control (paired by seed)."""
    out: dict[str, Any] = {}
    numbers = sorted({r["round"] for s in per_seed for r in s["rounds"]})
    for n in numbers:
        pairs = [(s, r) for s in per_seed for r in s["rounds"] if r["round"] == n]
        students = [r for _, r in pairs]
        entry: dict[str, Any] = {
            "seeds": [s["seed"] for s, _ in pairs],
            "student": summarise(students, method_keys(students)),
            "gain_over_teacher": {
                k: _mean([_gain(r, s["teacher"])[k] for s, r in pairs]) for k in GAIN_KEYS
            },
        }
        controls = [(r, r["control"]) for _, r in pairs if "control" in r]
        if controls:
            gold_only = [c for _, c in controls]
            entry["control"] = summarise(gold_only, method_keys(gold_only))
            entry["gain_over_control"] = {
                k: _mean([_gain(r, c)[k] for r, c in controls]) for k in GAIN_KEYS
            }
        out[str(n)] = entry
    return out


def self_train_section(settings, runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """The report's ``self_train``: its settings and, per method, ``per_seed`` records and
    ``rounds`` (:func:`_rounds_summary`)."""
    return {
        "rounds": settings.self_train_rounds,
        "iterations": settings.self_train_iters,
        "student_seed": settings.self_train_seed,
        "control": settings.self_train_control,
        "methods": {
            name: {
                "teacher": summarise([s["teacher"] for s in per_seed], GAIN_KEYS),
                "per_seed": list(per_seed),
                "rounds": _rounds_summary(per_seed),
            }
            for name, per_seed in runs.items()
        },
    }
