"""The OV-Shapes distillation methods run end to end at a tiny size: ViLD-text first (its RPN
gives the proposals), then ViLD, ViLD-ensemble, RKD, HierKD, RKD+HierKD and RKD-ensemble
sharing one region store of teacher targets."""

from __future__ import annotations

import json
import math

import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings, run_benchmark
from ovdet.benchmarks.ov_shapes.methods import BUILTIN_METHODS
from ovdet.data.region_store import RegionEmbeddingStore

DISTILL = ["vild", "vild_ensemble", "rkd", "hierkd", "rkd_hierkd", "rkd_ensemble"]


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_bench):
    out = tmp_path_factory.mktemp("bench_distill")
    settings = BenchmarkSettings(
        out=out / "run",
        methods=["vild_text", *DISTILL],
        **{**tiny_bench, "num_train": 12, "num_val": 6, "teacher_steps": 4, "det_iters": 3},
    )
    return out / "run", run_benchmark(settings)


def test_distillation_methods_report_numbers(report):
    out, rep = report
    assert list(rep["methods"]) == ["vild_text", *DISTILL]
    for name in DISTILL:
        assert not BUILTIN_METHODS[name].default  # opt-in: they need vild_text first
        (run,) = rep["methods"][name]["per_seed"]
        for key in ("AP50_base", "AP50_novel"):
            assert isinstance(run[key], float) and math.isfinite(run[key])
        assert run["iterations"] == 3


def test_region_store_shared_and_complete(report):
    out, _ = report
    store = RegionEmbeddingStore(out / "seed0" / "teacher_regions")
    assert len(store) == 12 and store.dim == 128
    item = store.get(next(iter(store.ids())))
    assert item["boxes"].shape[0] == item["embeddings"].shape[0] <= 32


def test_report_has_region_target_quality(report):
    _, rep = report
    quality = rep["teacher"]["per_seed"][0]["region_targets"]
    for group in ("base", "novel"):
        assert quality[group]["objects"] > 0 and 0.0 <= quality[group]["recall"] <= 1.0


def test_region_target_quality_by_hand(tmp_path):
    import json

    import torch

    from ovdet.benchmarks.ov_shapes.inputs import region_target_quality

    text = torch.eye(3)  # classes a, b, c
    store = RegionEmbeddingStore(tmp_path / "store", teacher="hand", dim=3, dtype="float32")
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 32.0, 30.0]])
    with store.writer() as w:  # proposal 0 = object a exactly, proposal 1 overlaps b (IoU 0.83)
        w.add(1, boxes, torch.tensor([[1.0, 0.1, 0.0], [0.9, 0.2, 0.0]]))
    coco = {
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},  # recalled, right
            {"image_id": 1, "category_id": 2, "bbox": [20, 20, 10, 10]},  # recalled, wrong (a)
            {"image_id": 1, "category_id": 3, "bbox": [50, 50, 10, 10]},  # not recalled
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5]},  # image not in the store
        ],
    }
    path = tmp_path / "train_all.json"
    path.write_text(json.dumps(coco))
    q = region_target_quality(store, path, text, ["a", "b", "c"], novel=["b", "c"])
    assert q == {
        "base": {"objects": 2, "recall": 0.5, "teacher_top1": 1.0},
        "novel": {"objects": 2, "recall": 0.5, "teacher_top1": 0.0},
    }


def test_distill_losses_were_logged(report):
    import json

    out, _ = report
    keys = {
        "vild": "loss_vild_image",
        "rkd": "loss_rkd_irm",
        "hierkd": "loss_hierkd_global",
        "rkd_hierkd": "loss_hierkd_global",
        "rkd_ensemble": "loss_rkd_irm",
    }
    for method, key in keys.items():
        lines = (out / "seed0" / method / "metrics.json").read_text().splitlines()
        assert any(key in json.loads(line) for line in lines), method


def test_probe_tool_reports_region_top1_and_ensemble_grid(report, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "probe_ov_shapes.py"
    spec = importlib.util.spec_from_file_location("probe_ov_shapes", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    out, _ = report
    grid = "inf:0.6667,0.01:0.5,x2:0.6667"  # x2: twice the model's own temperature
    probe.main(["--run", str(out), "--method", "vild_ensemble", "--grid", grid])
    result = json.loads(capsys.readouterr().out)
    for head in ("text", "image"):
        for group in ("base", "novel"):
            assert 0.0 <= result["region_top1"][head][group] <= 1.0
    agnostic = result["class_agnostic"]
    assert 0.0 <= agnostic["recall_base"] <= 1.0 and 0.0 <= agnostic["recall_novel"] <= 1.0
    assert agnostic["AP50"] is None or 0.0 <= agnostic["AP50"] <= 100.0
    used = json.loads((out / "seed0" / "vild_ensemble" / "config.json").read_text())
    own = used["model"]["roi_heads"]["box_predictor"]["image_temperature"]
    assert [(r["tau"], r["lam"]) for r in result["ensemble"]] == [
        ("inf", 0.6667),
        (0.01, 0.5),
        (pytest.approx(2 * own, abs=1e-6), 0.6667),
    ]
    assert all(0.0 <= r["AP50_novel"] <= 100.0 for r in result["ensemble"])
    # the teacher as the image head, on a plain ViLD-text model and on the ensemble's text head
    for method in ("vild_text", "vild_ensemble"):
        probe.main(["--run", str(out), "--method", method, "--teacher-grid", "0.05:0.6667"])
        rows = json.loads(capsys.readouterr().out)["teacher_ensemble"]
        assert [(r["tau"], r["lam"]) for r in rows] == [(0.05, 0.6667)], method
        assert 0.0 <= rows[0]["AP50_base"] <= 100.0 and 0.0 <= rows[0]["AP50_novel"] <= 100.0


def test_ensemble_image_temperature_is_the_teachers(report, tmp_path):
    """The bench runs each method's own preparation: ViLD-ensemble's (and RKD-ensemble's)
    tau_image = 1 / the teacher's learnt logit scale, unless the config sets one."""
    from detectron2.config import LazyConfig

    from ovdet.methods import get_method
    from ovdet.methods.vild_ensemble import set_image_temperature, teacher_temperature
    from ovdet.teacher.small_clip import load_small_clip

    out, _ = report
    checkpoint = out / "seed0" / "teacher" / "teacher.pt"
    scale = float(load_small_clip(checkpoint, device="cpu").model.logit_scale.exp())
    assert teacher_temperature(checkpoint) == pytest.approx(1.0 / scale, rel=1e-6)
    # the run used it: the predictor of the trained ensemble was built with this temperature
    for name in ("vild_ensemble", "rkd_ensemble"):
        assert get_method(name).prepare is set_image_temperature
        used = json.loads((out / "seed0" / name / "config.json").read_text())
        tau = used["model"]["roi_heads"]["box_predictor"]["image_temperature"]
        assert tau == pytest.approx(1.0 / scale, rel=1e-4), name
    assert get_method("vild").prepare is None
    cfg = LazyConfig.load(str(BUILTIN_METHODS["vild_ensemble"].config_path()))
    cfg.model.roi_heads.box_predictor.image_temperature = 0.01
    assert set_image_temperature(cfg, checkpoint) is None  # a value set in the config is kept
    assert cfg.model.roi_heads.box_predictor.image_temperature == 0.01
