"""The OV-Shapes suite: two worlds x one seed at a tiny size, the report, resuming, the CLI."""

from __future__ import annotations

import json
import math

import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings
from ovdet.benchmarks.ov_shapes.suite import SUITE_REPORT, combine_reports, run_suite
from ovdet.cli import main as cli
from ovdet.data.synthetic import load_split
from ovdet.data.synthetic.worlds import WORLDS

WORLD_NAMES = ["textures", "photo"]
METHODS = ["vild_text", "oracle"]


def _tiny(tiny_bench) -> dict:
    return {**tiny_bench, "teacher_steps": 2}


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory, tiny_bench):
    out = tmp_path_factory.mktemp("suite")
    logs: list[str] = []
    settings = BenchmarkSettings(out=out, methods=METHODS, **_tiny(tiny_bench))
    return out, run_suite(settings, WORLD_NAMES, log=logs.append), logs


def test_suite_report(suite_run):
    out, report, logs = suite_run
    assert report["benchmark"] == "ov-shapes-suite" and report["settings"]["suite"] == WORLD_NAMES
    assert list(report["worlds"]) == WORLD_NAMES
    assert any(line.startswith("[photo] ") for line in logs)
    for name, world in report["worlds"].items():
        assert world["generator"] == WORLDS[name].config(96).to_dict()
        split = load_split(out / name / "data")  # each world generated in its own folder
        assert split["params"] == world["generator"]
        assert world["classes"]["novel"] == split["novel"]
        assert (out / name / "report.json").is_file()
        (teacher,) = world["teacher"]["per_seed"]
        assert teacher["steps"] == 2 and (out / name / "seed0" / "teacher" / "teacher.pt").is_file()
        for method in METHODS:
            (run,) = world["methods"][method]["per_seed"]
            assert run["seed"] == 0 and math.isfinite(run["AP50_novel"])
            assert world["methods"][method]["mean"]["AP50_base"] == run["AP50_base"]
        (gain,) = world["gain_over_vild_text"]["oracle"]["per_seed"]
        runs = {m: world["methods"][m]["per_seed"][0] for m in METHODS}
        for key in ("AP50_base", "AP50_novel"):
            assert gain[key] == pytest.approx(
                runs["oracle"][key] - runs["vild_text"][key], abs=1e-4
            )
        assert "vild_text" not in world["gain_over_vild_text"]
    classes = [w["classes"]["num_classes"] for w in report["worlds"].values()]
    assert classes == [24, 36]  # textures: texture x shape; photo: the default classes
    for method in METHODS:
        summary = report["methods"][method]
        assert list(summary["per_world"]) == WORLD_NAMES
        novel = [summary["per_world"][w]["AP50_novel"] for w in WORLD_NAMES]
        assert summary["mean_over_worlds"]["AP50_novel"] == pytest.approx(sum(novel) / 2, abs=1e-4)
    gains = report["methods"]["oracle"]["gain_over_vild_text"]
    assert (
        set(gains) == {"per_world", "mean", "min"}
        and "gain_over_vild_text" not in (report["methods"]["vild_text"])
    )
    assert set(report["time_s"]) == {*WORLD_NAMES, "total"}
    assert json.loads((out / SUITE_REPORT).read_text())["worlds"] == report["worlds"]


def test_suite_resumes_from_the_cli(suite_run, tiny_bench, capsys):
    out, report, _ = suite_run
    argv = ["bench", "ov-shapes", "--suite", ",".join(WORLD_NAMES), "--out", str(out), "--json"]
    argv += ["--methods", ",".join(METHODS), "--quiet"]
    for key, value in _tiny(tiny_bench).items():
        if key != "progress":
            argv += [f"--{key.replace('_', '-')}", str(value)]
    assert cli(argv) == 0
    again = json.loads(capsys.readouterr().out)
    for name, world in again["worlds"].items():
        assert world["data"]["reused"] is True
        assert world["teacher"]["per_seed"] == report["worlds"][name]["teacher"]["per_seed"]
        for method in METHODS:
            (run,) = world["methods"][method]["per_seed"]
            assert run["reused"] is True
            assert run["AP50"] == report["worlds"][name]["methods"][method]["per_seed"][0]["AP50"]
    assert (
        again["methods"]["oracle"]["mean_over_worlds"]
        == (report["methods"]["oracle"]["mean_over_worlds"])
    )


def test_suite_errors(tmp_path, capsys):
    base = ["bench", "ov-shapes", "--out", str(tmp_path)]
    assert cli([*base, "--suite", "default", "--data", str(tmp_path), "--novel", "a"]) == 2
    assert "--suite" in capsys.readouterr().err
    assert cli([*base, "--suite", "default,sculpture", "--quiet"]) == 2
    assert "unknown world 'sculpture'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="generator must be unset"):
        run_suite(BenchmarkSettings(out=tmp_path, generator={"textures": True}), ["default"])
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_combine_reports_gains(tmp_path, fake_world_report):
    reports = {
        "default": fake_world_report(
            tmp_path / "a", {"vild_text": [(80, 70), (82, 72)], "rkd": [(85, 80), (84, 70)]}
        ),
        "photo": fake_world_report(
            tmp_path / "b", {"vild_text": [(60, 50), (60, 54)], "rkd": [(59, 51), (61, 55)]}
        ),
    }
    worlds = [WORLDS["default"], WORLDS["photo"]]
    report = combine_reports(BenchmarkSettings(out=tmp_path), worlds, reports, tmp_path)
    per_seed = report["worlds"]["default"]["gain_over_vild_text"]["rkd"]["per_seed"]
    assert per_seed == [
        {"seed": 0, "AP50_base": 5, "AP50_novel": 10},
        {"seed": 1, "AP50_base": 2, "AP50_novel": -2},
    ]
    gain = report["methods"]["rkd"]["gain_over_vild_text"]
    assert gain["per_world"] == {
        "default": {"AP50_base": 3.5, "AP50_novel": 4.0},
        "photo": {"AP50_base": 0.0, "AP50_novel": 1.0},
    }
    assert gain["mean"] == {"AP50_base": 1.75, "AP50_novel": 2.5}
    assert gain["min"] == {"AP50_base": 0.0, "AP50_novel": 1.0}
    assert report["methods"]["vild_text"]["mean_over_worlds"]["AP50_novel"] == 61.5
    assert report["methods"]["rkd"]["mean_over_worlds"]["AP"] is None
    alone = {w: {**r, "methods": {"rkd": r["methods"]["rkd"]}} for w, r in reports.items()}
    report = combine_reports(BenchmarkSettings(out=tmp_path), worlds, alone, tmp_path)
    assert "gain_over_vild_text" not in report["methods"]["rkd"]
    assert "gain_over_vild_text" not in report["worlds"]["photo"]


def test_suite_table_fits_long_method_names(tmp_path, fake_world_report):
    from ovdet.benchmarks.ov_shapes.cli import format_suite_report

    long = "grounding_eot_vildhead_nofusion"
    reports = {
        "default": fake_world_report(tmp_path / "a", {"vild_text": [(80, 70)], long: [(78, 71)]})
    }
    report = combine_reports(
        BenchmarkSettings(out=tmp_path), [WORLDS["default"]], reports, tmp_path
    )
    report["time_s"] = {"total": 1.0}
    lines = format_suite_report(report).splitlines()
    header = next(line for line in lines if line.startswith("world"))
    rows = [line for line in lines if line.startswith(("default ", "mean "))]
    assert len(rows) == 4
    for row in rows:  # every row's figures end where the header's columns end
        assert len(row.rstrip()) in (len(header) - 22, len(header))
    row = next(r for r in rows if long in r and r.startswith("default"))
    assert row.split()[2:] == ["78.0", "71.0", "-2.0", "+1.0"]
