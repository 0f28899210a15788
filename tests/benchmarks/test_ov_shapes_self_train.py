"""The benchmark's self-training stage (--self-train): a tiny world end to end, resume, stale
folders, refusals, and the per-round summaries on hand-made numbers."""

from __future__ import annotations

import json
import math

import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings
from ovdet.benchmarks.ov_shapes.cli import format_suite_report
from ovdet.benchmarks.ov_shapes.self_train import self_train_section
from ovdet.benchmarks.ov_shapes.suite import merge_suite_reports, run_suite


def _settings(out, tiny_bench, **kw) -> BenchmarkSettings:
    base = {**tiny_bench, "teacher_steps": 2, "det_iters": 2}
    base.update(methods=["vild_text"], self_train=["vild_text"], self_train_iters=2)
    base.update(kw)
    return BenchmarkSettings(out=out, **base)


@pytest.fixture(scope="module")
def st_run(tmp_path_factory, tiny_bench):
    out = tmp_path_factory.mktemp("st_suite")
    return out, run_suite(_settings(out, tiny_bench), ["textures"], log=lambda m: None)


def test_self_train_in_the_world_and_suite_reports(st_run):
    out, report = st_run
    world = report["worlds"]["textures"]["self_train"]
    assert (world["rounds"], world["iterations"], world["student_seed"], world["control"]) == (
        1,
        2,
        0,
        True,
    )
    m = world["methods"]["vild_text"]
    (seed,) = m["per_seed"]
    teacher = report["worlds"]["textures"]["methods"]["vild_text"]["per_seed"][0]
    assert seed["teacher"]["AP50_novel"] == teacher["AP50_novel"]
    (r1,) = seed["rounds"]
    assert r1["round"] == 1 and math.isfinite(r1["AP50_novel"])
    assert math.isfinite(r1["control"]["AP50_novel"])
    assert r1["merge"]["gold"] > 0
    # the teacher is the benchmark's trained detector; students and controls as asked
    folder = out / "textures" / "seed0" / "self_train" / "vild_text"
    manifest = json.loads((folder / "self_train.json").read_text())
    assert manifest["settings"]["weights"]["file"] == str(
        out / "textures" / "seed0" / "vild_text" / "model_final.pth"
    )
    assert manifest["settings"]["config"]["file"] is None  # the benchmark's loaded config
    assert manifest["settings"]["max_iter"] == 2 and manifest["settings"]["seed"] == 0
    for part in ("model", "control"):
        lines = (folder / "round_1" / part / "metrics.json").read_text().splitlines()
        steps = [r["iteration"] for r in map(json.loads, lines) if "total_loss" in r]
        assert steps[-1] == 1  # two iterations, counted from 0
    summary = m["rounds"]["1"]
    assert summary["student"]["mean"]["AP50_novel"] == pytest.approx(r1["AP50_novel"], abs=1e-4)
    assert summary["gain_over_control"]["AP50_novel"] == pytest.approx(
        r1["AP50_novel"] - r1["control"]["AP50_novel"], abs=1e-4
    )
    suite = report["self_train"]["vild_text"]
    assert suite["per_world"]["textures"]["rounds"]["1"]["student"] == summary["student"]["mean"]
    over = suite["mean_over_worlds"]["1"]
    assert over["worlds"] == 1 and over["gain_over_control"] == summary["gain_over_control"]
    assert over["min_gain_over_control"] == summary["gain_over_control"]
    assert "self-training, mean over worlds" in format_suite_report(report)


def test_rerun_reuses_and_other_settings_start_over(st_run, tiny_bench, monkeypatch):
    out, report = st_run
    import ovdet.engine.train as train_mod

    real = train_mod.train_and_evaluate

    def no_training(cfg, resume=False):
        raise AssertionError(f"trained again: {cfg.train.output_dir}")

    monkeypatch.setattr(train_mod, "train_and_evaluate", no_training)
    again = run_suite(_settings(out, tiny_bench), ["textures"], log=lambda m: None)
    assert again["self_train"] == report["self_train"]

    trained = []

    def counting(cfg, resume=False):
        trained.append(cfg.train.output_dir)
        return real(cfg, resume=resume)

    monkeypatch.setattr(train_mod, "train_and_evaluate", counting)
    other = run_suite(
        _settings(out, tiny_bench, self_train_iters=3, self_train_control=False),
        ["textures"],
        log=lambda m: None,
    )
    folder = out / "textures" / "seed0" / "self_train" / "vild_text"
    assert trained == [str(folder / "round_1" / "model")]  # the detector was reused
    assert not (folder / "round_1" / "control").exists()  # the old run's folder went
    manifest = json.loads((folder / "self_train.json").read_text())
    assert manifest["settings"]["max_iter"] == 3
    r1 = other["worlds"]["textures"]["self_train"]["methods"]["vild_text"]["per_seed"][0]
    assert "control" not in r1["rounds"][0]


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"self_train": ["rkd_ensemble"]}, r"--self-train \['rkd_ensemble'\] not among"),
        ({"methods": ["vild_text", "oracle"], "self_train": ["oracle"]}, "the oracle trains"),
        ({"self_train_rounds": 0}, "self_train_rounds must be an integer >= 1"),
        ({"self_train_iters": 0}, "self_train_iters must be an integer >= 1"),
    ],
)
def test_refused_before_any_work(tmp_path, tiny_bench, kw, message):
    with pytest.raises(ValueError, match=message):
        run_suite(_settings(tmp_path, tiny_bench, **kw), ["textures"], log=lambda m: None)
    assert not (tmp_path / "textures" / "data").exists()


def _seed(seed, teacher, rounds):
    """A per-seed record: teacher (base, novel), rounds [(student pair, control pair)]."""

    def ap(pair):
        return {"AP50_base": pair[0], "AP50_novel": pair[1], "AP50": None, "AP": None}

    return {
        "seed": seed,
        "teacher": {"AP50_base": teacher[0], "AP50_novel": teacher[1]},
        "rounds": [{"round": i + 1, **ap(s), "control": ap(c)} for i, (s, c) in enumerate(rounds)],
    }


def test_round_summaries_pair_gains_by_seed():
    settings = BenchmarkSettings(out="x", self_train=["m"], self_train_iters=5)
    runs = {
        "m": [
            _seed(0, (40.0, 30.0), [((45.0, 40.0), (44.0, 31.0)), ((46.0, 42.0), (45.0, 32.0))]),
            _seed(1, (50.0, 20.0), [((52.0, 30.0), (51.0, 24.0))]),
        ]
    }
    section = self_train_section(settings, runs)
    assert section["iterations"] == 5
    m = section["methods"]["m"]
    assert m["teacher"]["mean"] == {"AP50_base": 45.0, "AP50_novel": 25.0}
    r1, r2 = m["rounds"]["1"], m["rounds"]["2"]
    assert r1["seeds"] == [0, 1] and r2["seeds"] == [0]
    assert r1["student"]["mean"]["AP50_novel"] == 35.0
    assert r1["student"]["std"]["AP50_novel"] == pytest.approx(7.0711, abs=1e-4)
    assert r1["control"]["mean"]["AP50_novel"] == 27.5
    # paired: seed 0 +10 / +9 novel, seed 1 +10 / +6 -> means +10 over the teacher, +7.5 over
    # the control; base +5 / +2 and +1 / +1
    assert r1["gain_over_teacher"] == {"AP50_base": 3.5, "AP50_novel": 10.0}
    assert r1["gain_over_control"] == {"AP50_base": 1.0, "AP50_novel": 7.5}
    assert r2["gain_over_teacher"] == {"AP50_base": 6.0, "AP50_novel": 12.0}


def test_merge_refuses_other_student_recipes(st_run, tiny_bench, tmp_path):
    _, report = st_run
    other = json.loads(json.dumps(report))
    other["worlds"] = {"photo": other["worlds"].pop("textures")}
    other["settings"]["self_train_iters"] = 700
    with pytest.raises(ValueError, match="students were trained otherwise.*self_train_iters 2 vs"):
        merge_suite_reports([report, other], names=["a.json", "b.json"])
    other["settings"]["self_train_iters"] = 2
    merged = merge_suite_reports([report, other])
    over = merged["self_train"]["vild_text"]["mean_over_worlds"]["1"]
    assert over["worlds"] == 2
    assert list(merged["self_train"]["vild_text"]["per_world"]) == ["textures", "photo"]


def test_cli_flags_reach_the_settings(monkeypatch, tmp_path):
    import ovdet.benchmarks.ov_shapes.cli as bench_cli

    seen = {}

    def fake_suite(settings, worlds, log=None):
        seen["settings"], seen["worlds"] = settings, worlds
        raise SystemExit(0)

    monkeypatch.setattr(bench_cli, "run_suite", fake_suite)
    argv = ["--suite", "textures", "--out", str(tmp_path), "--quiet"]
    argv += ["--methods", "vild_text,rkd_ensemble", "--self-train", "rkd_ensemble"]
    argv += ["--self-train-rounds", "2", "--self-train-iters", "50", "--self-train-seed", "3"]
    with pytest.raises(SystemExit):
        bench_cli.main([*argv, "--no-control"])
    s = seen["settings"]
    assert (s.self_train, s.self_train_rounds, s.self_train_iters, s.self_train_seed) == (
        ["rkd_ensemble"],
        2,
        50,
        3,
    )
    assert s.self_train_control is False and seen["worlds"] == ["textures"]
    assert s.public()["self_train"] == ["rkd_ensemble"]
    with pytest.raises(SystemExit):
        bench_cli.main(argv[:7])  # without --self-train: none, and the report keys of before
    assert seen["settings"].self_train == [] and "self_train" not in seen["settings"].public()
