"""The rule that picks the recommended distillation method from a suite report.

The rule is stated in ``docs/results/method_choice.md`` before the results it applies to;
:func:`choose_method` computes it, so the choice is read from code, not by hand:

* gains are paired by seed against ViLD-text and averaged over the seeds of each world;
* a candidate **qualifies** when its novel gain is positive in every world of the suite and
  its base gain is not negative in any;
* among qualifying candidates the one with the largest mean novel gain over the worlds is
  recommended; candidates within ``tie`` (0.5) AP50 of it are tied, and among tied ones the
  cheapest to train (mean seconds per detector iteration in the same report) wins;
* no recommendation while a world of the standard suite, or a candidate's run in a world, is
  missing (``complete`` is then false and ``leader`` names the best qualifier so far).

The issue's target is reported beside the choice: novel AP50 above ViLD-text in every world,
a mean novel gain of at least +5 and base AP50 never lower.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ovdet.data.synthetic.worlds import DEFAULT_SUITE

__all__ = ["CANDIDATES", "RULE_DOC", "choose_method"]

BASELINE = "vild_text"
# stage 2 of docs/results/method_choice.md: the candidates left after the default world's
# existing runs disqualified ViLD, RKD, HierKD and RKD + HierKD
CANDIDATES: tuple[str, ...] = ("vild_ensemble", "rkd_ensemble")
RULE_DOC = "docs/results/method_choice.md"
TIE = 0.5
TARGET_MEAN_NOVEL_GAIN = 5.0


def _seconds_per_iteration(runs: Sequence[Mapping[str, Any]]) -> float | None:
    rates = [
        r["train_time_s"] / r["iterations"]
        for r in runs
        if r.get("train_time_s") is not None and r.get("iterations")
    ]
    return round(statistics.fmean(rates), 4) if rates else None


def choose_method(
    report: Mapping[str, Any],
    *,
    candidates: Sequence[str] = CANDIDATES,
    suite: Sequence[str] = DEFAULT_SUITE,
    seeds: Sequence[int] = (0, 1),
    tie: float = TIE,
) -> dict[str, Any]:
    """Apply the method-choice rule to a suite report (:func:`~.suite.combine_reports`).

    Args:
        report: the suite report (``worlds`` with per-seed method runs).
        candidates: the methods the rule chooses from (``CANDIDATES``).
        suite: the worlds a complete choice needs (the standard suite).
        seeds: the seeds each world needs.
        tie: candidates within this many AP50 of the best mean novel gain are tied.

    Returns:
        ``{"rule", "baseline", "suite", "seeds", "complete", "missing" (what a complete choice
        still needs), "candidates": {name: {"per_world": {world: {"seeds", "AP50_base",
        "AP50_novel"}}, "mean_novel_gain", "mean_base_gain", "min_novel_gain",
        "min_base_gain", "seconds_per_iteration", "qualifies", "failures"}}, "leader",
        "tied", "recommended" (None unless complete), "target": {"novel_above_baseline_
        every_world", "mean_novel_gain_at_least", "base_never_lower", "met"} (of the leader)}``.
    """
    worlds = report.get("worlds", {})
    missing: list[str] = [f"world {w}" for w in suite if w not in worlds]
    out_candidates: dict[str, Any] = {}
    for name in candidates:
        per_world: dict[str, Any] = {}
        runs_all: list[Mapping[str, Any]] = []
        failures: list[str] = []
        for world, entry in worlds.items():
            methods = entry.get("methods", {})
            if BASELINE not in methods or name not in methods:
                absent = BASELINE if BASELINE not in methods else name
                missing.append(f"{absent} in {world}")
                continue
            runs_all += methods[name]["per_seed"]
            # the suite's gains: paired by seed, averaged over the seeds both ran
            paired = entry[f"gain_over_{BASELINE}"][name]
            gain = {"seeds": sorted(g["seed"] for g in paired["per_seed"]), **paired["mean"]}
            lacking = [s for s in seeds if s not in gain["seeds"]]
            if lacking:
                missing.append(f"{name} vs {BASELINE} in {world}, seed(s) {lacking}")
            per_world[world] = gain
            if gain["AP50_novel"] is None or gain["AP50_novel"] <= 0:
                failures.append(f"novel gain {gain['AP50_novel']} in {world} (must be > 0)")
            if gain["AP50_base"] is None or gain["AP50_base"] < 0:
                failures.append(f"base gain {gain['AP50_base']} in {world} (must be >= 0)")
        novel = [g["AP50_novel"] for g in per_world.values() if g["AP50_novel"] is not None]
        base = [g["AP50_base"] for g in per_world.values() if g["AP50_base"] is not None]
        out_candidates[name] = {
            "per_world": per_world,
            "mean_novel_gain": round(statistics.fmean(novel), 4) if novel else None,
            "mean_base_gain": round(statistics.fmean(base), 4) if base else None,
            "min_novel_gain": min(novel, default=None),
            "min_base_gain": min(base, default=None),
            "seconds_per_iteration": _seconds_per_iteration(runs_all),
            "qualifies": bool(per_world) and not failures,
            "failures": failures,
        }
    qualifying = {n: c for n, c in out_candidates.items() if c["qualifies"]}
    leader = tied = None
    if qualifying:
        best = max(c["mean_novel_gain"] for c in qualifying.values())
        tied = sorted(n for n, c in qualifying.items() if c["mean_novel_gain"] >= best - tie)
        # the cheapest of the tied ones; unknown cost sorts last, then by name
        leader = min(
            tied,
            key=lambda n: (
                qualifying[n]["seconds_per_iteration"] is None,
                qualifying[n]["seconds_per_iteration"] or 0.0,
                n,
            ),
        )
    missing = list(dict.fromkeys(missing))  # one line per gap, in order
    complete = not missing
    target = None
    if leader is not None:
        lead = out_candidates[leader]
        target = {
            "novel_above_baseline_every_world": lead["min_novel_gain"] > 0,
            "mean_novel_gain_at_least": TARGET_MEAN_NOVEL_GAIN,
            "base_never_lower": lead["min_base_gain"] >= 0,
        }
        target["met"] = (
            target["novel_above_baseline_every_world"]
            and target["base_never_lower"]
            and lead["mean_novel_gain"] >= TARGET_MEAN_NOVEL_GAIN
        )
    return {
        "rule": RULE_DOC,
        "baseline": BASELINE,
        "suite": list(suite),
        "seeds": list(seeds),
        "complete": complete,
        "missing": missing,
        "candidates": out_candidates,
        "leader": leader,
        "tied": tied,
        "recommended": leader if complete else None,
        "target": target,
    }
