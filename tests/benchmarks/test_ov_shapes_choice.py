"""The method-choice rule on suite reports, and merging suite reports of worlds run apart."""

from __future__ import annotations

import json

import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings
from ovdet.benchmarks.ov_shapes.choice import choose_method
from ovdet.benchmarks.ov_shapes.suite import SUITE_REPORT, combine_reports, merge_suite_reports
from ovdet.cli import main as cli
from ovdet.data.synthetic.worlds import DEFAULT_SUITE, WORLDS

# per world: (base, novel) on seeds 0 and 1 for ViLD-text and the two candidates
NUMBERS = {
    "default": {
        "vild_text": [(80, 70), (82, 72)],
        "vild_ensemble": [(84, 78), (85, 79)],  # novel +7.5, base +3.5
        "rkd_ensemble": [(86, 80), (86, 80)],  # novel +9.0, base +5.0
    },
    "textures": {
        "vild_text": [(70, 70), (70, 74)],
        "vild_ensemble": [(72, 73), (71, 75)],  # novel +2.0, base +1.5
        "rkd_ensemble": [(75, 71), (75, 72)],  # novel -0.5: fails here
    },
    "palette": {
        "vild_text": [(60, 50), (60, 54)],
        "vild_ensemble": [(61, 56), (61, 58)],  # novel +5.0
        "rkd_ensemble": [(64, 60), (64, 60)],
    },
    "photo": {
        "vild_text": [(50, 40), (52, 42)],
        "vild_ensemble": [(51, 45), (53, 47)],  # novel +5.0
        "rkd_ensemble": [(55, 50), (55, 50)],
    },
}
RATES = {"vild_text": 0.8, "vild_ensemble": 1.0, "rkd_ensemble": 1.2}


def _suite(tmp_path, fake_world_report, numbers=NUMBERS, rates=RATES, worlds=None):
    worlds = worlds or list(numbers)
    reports = {w: fake_world_report(tmp_path / w, numbers[w], rates) for w in worlds}
    chosen = [WORLDS[w] for w in worlds]
    return combine_reports(BenchmarkSettings(out=tmp_path), chosen, reports, tmp_path)


def test_rule_disqualifies_a_failure_in_one_world(tmp_path, fake_world_report):
    choice = _suite(tmp_path, fake_world_report)["method_choice"]
    assert choice["complete"] and choice["missing"] == []
    rkd = choice["candidates"]["rkd_ensemble"]
    assert not rkd["qualifies"] and rkd["failures"] == ["novel gain -0.5 in textures (must be > 0)"]
    vild = choice["candidates"]["vild_ensemble"]
    assert vild["qualifies"] and vild["failures"] == []
    assert vild["per_world"]["default"] == {"seeds": [0, 1], "AP50_base": 3.5, "AP50_novel": 7.5}
    assert vild["mean_novel_gain"] == pytest.approx((7.5 + 2 + 5 + 5) / 4)
    assert vild["min_novel_gain"] == 2.0 and vild["seconds_per_iteration"] == 1.0
    # the larger mean novel gain of RKD-ensemble does not matter: it failed one world
    assert rkd["mean_novel_gain"] > vild["mean_novel_gain"]
    assert choice["recommended"] == choice["leader"] == "vild_ensemble"
    assert choice["target"] == {
        "novel_above_baseline_every_world": True,
        "mean_novel_gain_at_least": 5.0,
        "base_never_lower": True,
        "met": False,  # mean novel gain 4.875 < 5
    }


def test_rule_base_lower_and_ties(tmp_path, fake_world_report):
    numbers = json.loads(json.dumps(NUMBERS))
    numbers["textures"]["rkd_ensemble"] = [[71, 73], [71, 75]]  # novel +2.0, base +1.0
    # ViLD-ensemble's base drops in palette: out
    numbers["palette"]["vild_ensemble"] = [[59, 56], [60, 58]]
    choice = _suite(tmp_path, fake_world_report, numbers)["method_choice"]
    assert choice["candidates"]["vild_ensemble"]["failures"] == [
        "base gain -0.5 in palette (must be >= 0)"
    ]
    assert choice["recommended"] == "rkd_ensemble" and choice["tied"] == ["rkd_ensemble"]
    assert choice["target"]["met"] is True
    # a tie within 0.5 AP50 goes to the cheaper method
    numbers["palette"]["vild_ensemble"] = [[61, 56], [61, 58]]
    numbers["default"]["vild_ensemble"] = [[84, 84.6], [85, 86.6]]  # mean novel gain 6.65 vs 7.0
    choice = _suite(tmp_path / "tie", fake_world_report, numbers)["method_choice"]
    means = {n: c["mean_novel_gain"] for n, c in choice["candidates"].items()}
    assert means["rkd_ensemble"] - means["vild_ensemble"] == pytest.approx(0.35)
    assert choice["tied"] == ["rkd_ensemble", "vild_ensemble"]
    assert choice["recommended"] == "vild_ensemble"  # 1.0 s/it against 1.2
    rates = {**RATES, "vild_ensemble": 1.5}
    choice = _suite(tmp_path / "dear", fake_world_report, numbers, rates)["method_choice"]
    assert choice["recommended"] == "rkd_ensemble"


def test_rule_needs_every_world_and_seed(tmp_path, fake_world_report):
    choice = _suite(tmp_path, fake_world_report, worlds=["default", "photo"])["method_choice"]
    assert not choice["complete"] and choice["recommended"] is None
    assert choice["leader"] == "rkd_ensemble"  # the best qualifier on the worlds so far
    assert choice["missing"] == ["world textures", "world palette"]
    numbers = json.loads(json.dumps(NUMBERS))
    numbers["photo"]["vild_text"] = numbers["photo"]["vild_text"][:1]  # seed 0 only
    del numbers["palette"]["rkd_ensemble"]
    choice = _suite(tmp_path / "gaps", fake_world_report, numbers)["method_choice"]
    assert choice["missing"] == [
        "vild_ensemble vs vild_text in photo, seed(s) [1]",
        "rkd_ensemble in palette",
        "rkd_ensemble vs vild_text in photo, seed(s) [1]",
    ]
    assert choice["recommended"] is None
    assert choice == choose_method(_suite(tmp_path / "again", fake_world_report, numbers))


def _write_suite(path, report):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return str(path)


def test_merge_suite_reports(tmp_path, fake_world_report, capsys):
    whole = _suite(tmp_path / "whole", fake_world_report)
    parts = [
        _suite(tmp_path / "a", fake_world_report, worlds=["default", "textures"]),
        _suite(tmp_path / "b", fake_world_report, worlds=["palette", "photo"]),
    ]
    merged = merge_suite_reports(parts, names=["a.json", "b.json"])
    assert list(merged["worlds"]) == list(DEFAULT_SUITE)
    assert merged["methods"] == whole["methods"]
    assert merged["method_choice"] == whole["method_choice"]
    assert [s["report"] for s in merged["merged_from"]] == ["a.json", "b.json"]
    # the CLI writes and prints the same
    paths = [_write_suite(tmp_path / n / SUITE_REPORT, r) for n, r in zip("ab", parts, strict=True)]
    out = tmp_path / "out"
    assert cli(["bench", "ov-shapes", "--merge", *paths, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recommended: vild_ensemble" in text and "rkd_ensemble" in text
    written = json.loads((out / SUITE_REPORT).read_text())
    assert written["method_choice"] == whole["method_choice"]


def test_merge_refuses_mismatches(tmp_path, fake_world_report, capsys):
    a = _suite(tmp_path / "a", fake_world_report, worlds=["default"])
    b = _suite(tmp_path / "b", fake_world_report, worlds=["default", "photo"])
    with pytest.raises(ValueError, match="b.json: world 'default' is also in an earlier"):
        merge_suite_reports([a, b], names=["a.json", "b.json"])
    c = json.loads(json.dumps(_suite(tmp_path / "c", fake_world_report, worlds=["photo"])))
    c["settings"]["det_iters"] = 700
    with pytest.raises(ValueError, match=r"c.json: settings differ .* det_iters None vs 700"):
        merge_suite_reports([a, c], names=["a.json", "c.json"])
    with pytest.raises(ValueError, match="not an ov-shapes suite report"):
        merge_suite_reports([a, {"benchmark": "ov-shapes", "methods": {}}])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    good = _write_suite(tmp_path / "a" / SUITE_REPORT, a)
    assert cli(["bench", "ov-shapes", "--merge", good, str(bad), "--out", str(tmp_path)]) == 2
    assert f"cannot read {bad}" in capsys.readouterr().err
    wrong = _write_suite(tmp_path / "c" / SUITE_REPORT, c)
    assert cli(["bench", "ov-shapes", "--merge", good, wrong, "--out", str(tmp_path)]) == 2
    assert "det_iters" in capsys.readouterr().err
    assert not (tmp_path / SUITE_REPORT).exists()
