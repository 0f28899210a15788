"""The OV-Shapes distillation methods run end to end at a tiny size: ViLD-text first (its RPN
gives the proposals), then ViLD, ViLD-ensemble, RKD, HierKD and RKD+HierKD sharing one region
store of teacher targets."""

from __future__ import annotations

import math

import pytest

from ovdet.benchmarks.ov_shapes import BenchmarkSettings, run_benchmark
from ovdet.benchmarks.ov_shapes.methods import BUILTIN_METHODS
from ovdet.teacher.store import RegionEmbeddingStore

DISTILL = ["vild", "vild_ensemble", "rkd", "hierkd", "rkd_hierkd"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_distill")
    settings = BenchmarkSettings(
        out=out / "run",
        methods=["vild_text", *DISTILL],
        num_train=12,
        num_val=6,
        image_size=96,
        teacher_steps=4,
        teacher_batch_size=32,
        det_iters=3,
        det_batch_size=2,
        num_workers=0,
        threads=1,
        progress=False,
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


def test_distill_losses_were_logged(report):
    import json

    out, _ = report
    keys = {
        "vild": "loss_vild_image",
        "rkd": "loss_rkd_irm",
        "hierkd": "loss_hierkd_global",
        "rkd_hierkd": "loss_hierkd_global",
    }
    for method, key in keys.items():
        lines = (out / "seed0" / method / "metrics.json").read_text().splitlines()
        assert any(key in json.loads(line) for line in lines), method
