"""OV-Shapes benchmark end to end at a tiny size: generate -> pretrain -> embed -> train -> eval.

Also: the ``ovdet bench ov-shapes`` CLI in-process, external COCO-format data, a custom method
with extra inputs, and the exported demo assets.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings, MethodSpec, run_benchmark
from ovdet.benchmarks.ov_shapes.methods import resolve_methods
from ovdet.cli import main as cli
from ovdet.data.synthetic.catalog import ov_shapes_dataset, prepare_external_dataset
from ovdet.model_zoo.assets import load_demo_assets, verify_assets

METHOD_KEYS = {"AP50_base", "AP50_novel", "AP50", "AP"}


def _finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_bench):
    out = tmp_path_factory.mktemp("bench")
    seen = []

    def prepare(ctx, cfg):
        # a method's extra inputs: written under its work dir, then used by the config
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        (ctx.work_dir / "extra.txt").write_text(ctx.teacher_checkpoint.name)
        seen.append(ctx)
        cfg.model.roi_heads.box_predictor.classifier.temperature = 0.05

    custom = MethodSpec("custom", "ov_shapes/oracle_small.py", "test method", prepare=prepare)
    settings = BenchmarkSettings(
        out=out / "run",
        methods=["vild_text", "oracle", custom],
        export_demo=out / "assets",
        export_command="pytest tiny run",
        **tiny_bench,
    )
    return out, run_benchmark(settings), seen


def test_report_has_finite_numbers(tiny_run):
    out, report, _ = tiny_run
    assert report["benchmark"] == "ov-shapes" and report["settings"]["seeds"] == [0]
    teacher = report["teacher"]["per_seed"][0]
    for key in ("top1_base", "top1_novel", "top1_all"):
        assert 0.0 <= teacher[key] <= 1.0
    assert teacher["steps"] == 5
    assert set(report["methods"]) == {"vild_text", "oracle", "custom"}
    for method in report["methods"].values():
        (run,) = method["per_seed"]
        assert METHOD_KEYS <= set(run) and all(_finite(run[k]) for k in METHOD_KEYS)
        assert run["iterations"] == 4 and run["batch_size"] == 2
        assert method["std"]["AP50_novel"] == 0.0
        assert (Path(run["output_dir"]) / "model_final.pth").is_file()
    for stage in ("data", "teacher", "embed", "vild_text", "oracle", "total"):
        assert report["time_s"][stage] >= 0.0
    assert report["memory_mb"]["rss_self"] > 0
    saved = json.loads((out / "run" / "report.json").read_text())
    assert saved["methods"]["oracle"]["mean"] == report["methods"]["oracle"]["mean"]


def test_custom_method_prepare_runs(tiny_run):
    _, _, seen = tiny_run
    (ctx,) = seen
    assert ctx.name == "custom" and ctx.teacher_checkpoint.is_file()
    assert (ctx.work_dir / "extra.txt").read_text() == "teacher.pt"
    assert ctx.embeddings.with_name("class_embeddings.names.txt").is_file()


def test_rerun_reuses_finished_work_and_redoes_changed_or_torn(tiny_run, tiny_bench, tmp_path):
    out, rep, _ = tiny_run
    run = tmp_path / "moved_run"
    shutil.copytree(out / "run", run)  # a moved run folder keeps its results
    logs = []
    again = run_benchmark(
        BenchmarkSettings(out=run, methods=["vild_text", "oracle"], **tiny_bench), log=logs.append
    )
    assert any("reusing the teacher" in line for line in logs)
    assert again["teacher"]["per_seed"] == rep["teacher"]["per_seed"]
    for name in ("vild_text", "oracle"):
        (first,), (second,) = rep["methods"][name]["per_seed"], again["methods"][name]["per_seed"]
        assert second["reused"] is True and second["AP50"] == first["AP50"]

    (run / "seed0" / "oracle" / "result.json").write_text("{")  # torn by a crash
    changed = run_benchmark(
        BenchmarkSettings(
            out=run, methods=["vild_text", "oracle"], **{**tiny_bench, "det_iters": 2}
        )
    )
    for name in ("vild_text", "oracle"):  # changed config (and torn result): trained again
        (result,) = changed["methods"][name]["per_seed"]
        assert "reused" not in result and result["iterations"] == 2
    saved = json.loads((run / "seed0" / "oracle" / "result.json").read_text())
    assert saved["result"]["iterations"] == 2


def test_exported_demo_assets_load(tiny_run):
    out, report, _ = tiny_run
    manifest = verify_assets(out / "assets")
    assert manifest == report["demo_export"]
    assert manifest["command"] == "pytest tiny run"
    assert sum(f["bytes"] for f in manifest["files"].values()) < 8e6
    assert set(manifest["metrics"]["shipped_model_val"]) == METHOD_KEYS
    bundle = load_demo_assets(out / "assets")
    assert bundle.model.vocabulary == manifest["classes"]
    bundle.model.set_vocabulary(["red circle", "blue star"])
    assert bundle.model.vocabulary == ["red circle", "blue star"]
    (out / "assets" / "detector.yaml").write_text("corrupt")
    with pytest.raises(ValueError, match="sha256"):
        verify_assets(out / "assets")


def test_cli_json_with_external_data(tiny_run, capsys):
    out, report, _ = tiny_run
    generated = out / "run" / "data"  # an OV-Shapes folder is also a valid external dataset
    novel = ["red triangle", "green cross"]
    argv = ["bench", "ov-shapes", "--json", "--out", str(out / "cli")]  # logs go to stderr
    argv += ["--data", str(generated), "--novel", ",".join(novel), "--methods", "vild_text"]
    argv += ["--teacher-steps", "3", "--teacher-batch-size", "32", "--det-iters", "2"]
    argv += ["--det-batch-size", "2", "--num-workers", "0", "--threads", "1"]
    assert cli(argv) == 0
    cli_report = json.loads(capsys.readouterr().out)
    assert cli_report["data"]["generated"] is False
    assert list(cli_report["methods"]) == ["vild_text"]
    (run,) = cli_report["methods"]["vild_text"]["per_seed"]
    assert all(_finite(run[k]) for k in METHOD_KEYS)
    split = json.loads((out / "cli" / "data" / "split.json").read_text())
    assert split["novel"] == novel and len(split["base"]) == 34
    base = json.loads((out / "cli" / "data" / "train_base.json").read_text())
    novel_ids = {c["id"] for c in split["categories"] if c["name"] in novel}
    assert base["annotations"] and not {a["category_id"] for a in base["annotations"]} & novel_ids


def test_external_data_errors(tiny_run, tmp_path):
    out, _, _ = tiny_run
    with pytest.raises(ValueError, match="not categories"):
        prepare_external_dataset(out / "run" / "data", tmp_path, ["pink unicorn"])
    with pytest.raises(FileNotFoundError, match="no training json"):
        prepare_external_dataset(tmp_path, tmp_path / "x", ["red circle"])
    with pytest.raises(ValueError, match="split must be"):
        ov_shapes_dataset(out / "run" / "data", "test")


def test_resolve_methods():
    assert [m.name for m in resolve_methods(None)] == ["vild_text", "oracle"]
    with pytest.raises(ValueError, match="unknown method 'vild_typo'"):
        resolve_methods(["vild_typo"])
    assert [m.name for m in resolve_methods(["vild_text", "vild"])] == ["vild_text", "vild"]
    with pytest.raises(ValueError, match="twice"):
        resolve_methods(["oracle", "oracle"])
