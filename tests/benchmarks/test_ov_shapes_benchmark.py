"""OV-Shapes benchmark end to end at a tiny size: generate -> pretrain -> embed -> train -> eval.

Also: the ``ovdet bench ov-shapes`` CLI in-process, external COCO-format data, a custom method
with extra inputs, and the exported demo assets.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings, MethodSpec, run_benchmark
from ovdet.benchmarks.ov_shapes.methods import resolve_methods
from ovdet.cli import main as cli
from ovdet.data.synthetic.catalog import ov_shapes_dataset, prepare_external_dataset
from ovdet.model_zoo import load_bundle, verify_bundle

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
        # the OV-Shapes detectors have a mask head: mask AP beside the box AP, in the mean too
        segm = {f"segm_{k}" for k in (*METHOD_KEYS, "AP_base", "AP_novel")}
        assert segm <= set(run) and all(_finite(run[k]) for k in segm)
        assert segm <= set(method["mean"])
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
        assert "reused" not in result and "resumed" not in result  # other key: not resumed
        assert result["iterations"] == 2
    saved = json.loads((run / "seed0" / "oracle" / "result.json").read_text())
    assert saved["result"]["iterations"] == 2


def test_killed_training_resumes_from_its_checkpoint(tiny_run, tiny_bench, tmp_path):
    out, rep, _ = tiny_run
    run = tmp_path / "killed_run"
    shutil.copytree(out / "run", run)
    folder = run / "seed0" / "oracle"
    (folder / "result.json").unlink()  # killed after its last checkpoint, before the result
    written = (folder / "model_final.pth").stat().st_mtime_ns
    again = run_benchmark(BenchmarkSettings(out=run, methods=["oracle"], **tiny_bench))
    (first,) = rep["methods"]["oracle"]["per_seed"]
    (second,) = again["methods"]["oracle"]["per_seed"]
    assert second["resumed"] is True and "reused" not in second
    assert second["AP50"] == first["AP50"] and second["iterations"] == 4
    # resumed at the final iteration: not one training step more, the weights not written again
    assert (folder / "model_final.pth").stat().st_mtime_ns == written


def test_exported_demo_assets_load(tiny_run):
    out, report, _ = tiny_run
    manifest = verify_bundle(out / "assets")
    assert manifest == report["demo_export"]
    assert manifest["command"] == "pytest tiny run"
    assert (manifest["name"], manifest["method"]) == ("assets", "vild_text")
    assert sum(f["bytes"] for f in manifest["files"].values()) < 8e6
    assert set(manifest["metrics"]["shipped_model_val"]) == METHOD_KEYS
    bundle = load_bundle(out / "assets")
    assert bundle.model.vocabulary == manifest["classes"]
    bundle.model.set_vocabulary(["red circle", "blue star"])
    assert bundle.model.vocabulary == ["red circle", "blue star"]
    (out / "assets" / "detector.yaml").write_text("corrupt")
    with pytest.raises(ValueError, match="sha256"):
        verify_bundle(out / "assets")


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


# ------------------------------------------------------------------------------ ensemble bundle
@pytest.fixture(scope="module")
def ensemble_export(tiny_run, tiny_bench, tmp_path_factory):
    """The tiny run again with RKD-ensemble (teacher and ViLD-text reused), its bundle
    exported by the benchmark (``--export-method rkd_ensemble``), then exported again from the
    finished run folder."""
    from ovdet.model_zoo import export_run_bundle

    out, _, _ = tiny_run
    root = tmp_path_factory.mktemp("ensemble")
    shutil.copytree(out / "run", root / "run")
    settings = BenchmarkSettings(
        out=root / "run",
        methods=["vild_text", "rkd_ensemble"],
        export_demo=root / "ov-shapes-tiny-ensemble",
        export_method="rkd_ensemble",
        export_command="pytest ensemble run",
        **tiny_bench,
    )
    report = run_benchmark(settings)
    again = export_run_bundle(
        root / "run", root / "again", method="rkd_ensemble", command="pytest ensemble run"
    )
    return root, report, again


def _trained_ensemble(run: Path):
    """The RKD-ensemble detector as the benchmark trained it, rebuilt from its config file
    (not from the bundle), with the trained weights rounded to fp16 as the bundle ships them."""
    import torch

    from ovdet.engine.build import build_model, load_config
    from ovdet.methods import configs_dir
    from ovdet.methods.vild_ensemble import set_image_temperature

    seed_dir = run / "seed0"
    cfg = load_config(configs_dir() / "ov_shapes" / "rkd_ensemble_small.py")
    cfg.ov_shapes.root = str(run / "data")
    cfg.ov_shapes.embeddings = str(seed_dir / "class_embeddings.pt")
    cfg.model.distillers = []  # training only
    set_image_temperature(cfg, seed_dir / "teacher" / "teacher.pt")
    model = build_model(cfg, "cpu")
    state = torch.load(seed_dir / "rkd_ensemble" / "model_final.pth", weights_only=True)["model"]
    state = {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("distillers.")})
    return cfg, model.eval()


def test_exported_ensemble_bundle_loads_alone_and_predicts_as_trained(ensemble_export):
    import torch
    from detectron2.config import LazyConfig
    from detectron2.data import transforms as T

    from ovdet.predictor import OVPredictor
    from ovdet.text import load_class_embeddings

    root, report, _ = ensemble_export
    folder = root / "ov-shapes-tiny-ensemble"
    manifest = verify_bundle(folder)
    assert manifest == report["demo_export"]
    assert (manifest["name"], manifest["method"]) == ("ov-shapes-tiny-ensemble", "rkd_ensemble")
    assert set(manifest["metrics"]["training_run"]) == {"teacher", "vild_text", "rkd_ensemble"}
    assert set(manifest["metrics"]["shipped_model_val"]) == METHOD_KEYS
    assert "RKD-ensemble" in (folder / "README.md").read_text()

    # detector.yaml stands alone: no interpolation, base names and temperature written in
    text = (folder / "detector.yaml").read_text()
    assert "${" not in text and "ov_shapes_class_names" not in text
    box_predictor = LazyConfig.load(str(folder / "detector.yaml")).model.roi_heads.box_predictor
    assert list(box_predictor.base_names) == manifest["base"]
    trained_cfg = json.loads((root / "run" / "seed0" / "rkd_ensemble" / "config.json").read_text())
    tau = trained_cfg["model"]["roi_heads"]["box_predictor"]["image_temperature"]
    assert box_predictor.image_temperature == tau and 0.0 < tau < 1.0

    bundle = load_bundle(folder)
    assert bundle.model.vocabulary == manifest["classes"]
    cfg, trained = _trained_ensemble(root / "run")
    # the bundle's text tower (fp16, pruned tokens) gives the run's class embeddings
    emb = bundle.model.roi_heads.get_vocabulary()
    run_emb = load_class_embeddings(cfg.ov_shapes.embeddings, select=manifest["classes"])
    assert torch.nn.functional.cosine_similarity(emb, run_emb).min() > 0.99
    trained.set_vocabulary(emb, names_for_embeddings=manifest["classes"])
    resize = T.ResizeShortestEdge([96, 96], max_size=96)
    ours = OVPredictor(bundle.model, resize=resize, device="cpu")
    theirs = OVPredictor(trained, resize=resize, device="cpu")
    for image in sorted((root / "run" / "data" / "images" / "val").glob("*.png"))[:2]:
        a, b = ours.predict(image), theirs.predict(image)
        assert len(a["scores"]) > 0
        # the same up to float rounding (the embeddings are normalised once more here)
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(a["boxes"], b["boxes"], rtol=0, atol=1e-3)
        assert a["class_names"] == b["class_names"]


def test_export_from_the_run_folder_matches_the_export_in_the_run(ensemble_export):
    root, report, again = ensemble_export
    first = report["demo_export"]
    assert again["files"] == first["files"]  # the same bytes: detector, yaml, text tower
    assert again["metrics"]["shipped_model_val"] == first["metrics"]["shipped_model_val"]
    for stage, result in first["metrics"]["training_run"].items():  # the run's own numbers
        assert {k: result[k] for k in result if k != "reused"} == again["metrics"]["training_run"][
            stage
        ]
    assert again["command"] == "pytest ensemble run" and again["name"] == "again"


def test_export_method_must_be_trained(tiny_bench, tmp_path):
    from ovdet.benchmarks.ov_shapes.cli import build_parser

    settings = BenchmarkSettings(
        out=tmp_path, methods=["vild_text"], export_demo=tmp_path / "b", export_method="rkd",
        **tiny_bench,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"--export-method rkd is not among --methods"):
        run_benchmark(settings)
    args = build_parser().parse_args(["--export-demo", "b", "--export-method", "rkd_ensemble"])
    assert (args.export_demo, args.export_method) == ("b", "rkd_ensemble")
    assert build_parser().parse_args([]).export_method == "vild_text"  # as before
