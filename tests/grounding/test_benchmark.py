"""The OV-Shapes benchmark runs the grounding methods by name (registry -> configs ->
training entry point -> evaluation), with the seed's teacher text tower as token encoder."""

from __future__ import annotations

import math

from ovdet.benchmarks.ov_shapes import BenchmarkSettings, run_benchmark


def test_grounding_methods_train_and_report_ap50(tmp_path):
    settings = BenchmarkSettings(
        out=tmp_path / "run",
        methods=["grounding", "grounding_nofusion"],
        num_train=8,
        num_val=4,
        image_size=96,
        teacher_steps=2,
        teacher_batch_size=16,
        det_iters=3,
        det_batch_size=2,
        num_workers=0,
        threads=1,
        progress=False,
    )
    report = run_benchmark(settings)
    for name in ("grounding", "grounding_nofusion"):
        (run,) = report["methods"][name]["per_seed"]
        assert run["iterations"] == 3
        for key in ("AP50_base", "AP50_novel"):
            assert isinstance(run[key], float) and math.isfinite(run[key])
    config = (tmp_path / "run" / "seed0" / "grounding" / "config.json").read_text()
    assert "teacher.pt" in config  # the seed's teacher reads the prompts
