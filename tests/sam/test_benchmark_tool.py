"""``tools/benchmark_sam.py`` runs and prints its JSON (tiny SAM, 1 and 3 boxes, CPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

TOOL = Path(__file__).resolve().parents[2] / "tools" / "benchmark_sam.py"


def test_benchmark_prints_json(capsys):
    spec = importlib.util.spec_from_file_location("benchmark_sam", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ["--device", "cpu", "--boxes", "1,3", "--chunk-sizes", "3", "--repeats", "1"]
    threads = torch.get_num_threads()
    try:
        assert tool.main(argv) == 0
    finally:
        torch.set_num_threads(threads)  # the tool sets its own
    report = json.loads(capsys.readouterr().out)
    (run,) = report["runs"]
    assert [row["boxes"] for row in run["decode"]] == [1, 3]
    assert run["ratio_batched_3_vs_1"] > 0 and run["encoder_s"] > 0
    assert set(run["peak_memory_mib_3_boxes_by_chunk_size"]) == {"3"}
