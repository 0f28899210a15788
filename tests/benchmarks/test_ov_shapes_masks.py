"""The OV-Shapes mask study at a tiny size: every method keeps ViLD-text's boxes (its weights,
frozen), only the masks change: SAM on the boxes, or the mask head fine-tuned with novel
masks absent / from SAM / true."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ovdet.benchmarks.ov_shapes import BenchmarkSettings, run_benchmark
from ovdet.benchmarks.ov_shapes.masks import FINETUNE_ITERS, MASK_METHODS, MIN_MASK_SCORE
from ovdet.benchmarks.ov_shapes.methods import BUILTIN_METHODS

MASKS = list(MASK_METHODS)


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_bench):
    out = tmp_path_factory.mktemp("bench_masks") / "run"
    settings = BenchmarkSettings(
        out=out,
        methods=["vild_text", *MASKS],
        **{**tiny_bench, "num_train": 8, "num_val": 4, "teacher_steps": 3, "det_iters": 3},
    )
    return out, run_benchmark(settings)


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


def test_mask_methods_keep_vild_text_boxes_and_report_masks(report):
    _, rep = report
    assert list(rep["methods"]) == ["vild_text", *MASKS]
    (ref,) = rep["methods"]["vild_text"]["per_seed"]
    for name in MASKS:
        assert not BUILTIN_METHODS[name].default  # opt-in: they need vild_text first
        (run,) = rep["methods"][name]["per_seed"]
        for key in ("AP50_base", "AP50_novel", "AP_base", "AP_novel"):
            assert _same(run[key], ref[key]), (name, key)  # the same boxes and classes
        assert "segm_AP50_novel" in run and "segm_AP_base" in run
    assert rep["methods"]["sam_boxes"]["per_seed"][0]["iterations"] == 0


def _state(path):
    state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    return {k: v for k, v in state.items() if torch.is_tensor(v)}


def test_finetuning_changes_the_mask_head_only(report):
    out, _ = report
    before = _state(out / "seed0" / "vild_text" / "model_final.pth")
    for name in ("mask_head_base", "sam_mask_head", "mask_head_oracle"):
        after = _state(out / "seed0" / name / "model_final.pth")
        # frozen BatchNorm (FrozenBatchNorm2d) kept its statistics, not its step counter
        assert {k for k in before if k not in after} == {
            k for k in before if k.startswith("backbone.") and k.endswith("num_batches_tracked")
        }
        changed = {k for k in after if not torch.equal(before[k], after[k])}
        assert changed and all(k.startswith("roi_heads.mask_head.") for k in changed), name


def test_training_jsons_hold_the_novel_masks_each_method_says(report):
    out, _ = report
    split = json.loads((out / "data" / "split.json").read_text())
    novel = {c["id"] for c in split["categories"] if c["name"] in split["novel"]}

    def novel_anns(method, file):
        data = json.loads((out / "seed0" / method / "data" / file).read_text())
        return [a for a in data["annotations"] if a["category_id"] in novel]

    base_run = novel_anns("mask_head_base", "train_novel_none.json")
    assert base_run and all("segmentation" not in a for a in base_run)
    sam = novel_anns("sam_mask_head", "train_novel_sam_masks.json")
    assert len(sam) == len(base_run)
    assert all(isinstance(a["segmentation"], dict) and 0 <= a["mask_score"] <= 1.5 for a in sam)
    gold = novel_anns("mask_head_oracle", "train_novel_gold.json")
    assert all("segmentation" in a and "mask_score" not in a for a in gold)
    assert 0 < MIN_MASK_SCORE < 1


def test_finetune_config_matches_the_documented_schedule():
    from detectron2.config import LazyConfig

    from ovdet.methods import configs_dir

    cfg = LazyConfig.load(str(configs_dir() / MASK_METHODS["sam_mask_head"][0]))
    assert cfg.train.max_iter == FINETUNE_ITERS
    assert list(cfg.train.trainable) == ["roi_heads.mask_head"]


def test_rerun_reuses_the_mask_methods(report, tiny_bench):
    out, rep = report
    settings = BenchmarkSettings(
        out=out,
        methods=["vild_text", *MASKS],
        **{**tiny_bench, "num_train": 8, "num_val": 4, "teacher_steps": 3, "det_iters": 3},
    )
    again = run_benchmark(settings)
    for name in MASKS:
        assert again["methods"][name]["per_seed"][0].get("reused") is True


def test_mask_methods_need_vild_text(tiny_bench, tmp_path):
    settings = BenchmarkSettings(
        out=tmp_path / "run",
        methods=["sam_boxes"],
        **{**tiny_bench, "num_train": 4, "num_val": 2, "teacher_steps": 2, "det_iters": 2},
    )
    with pytest.raises(FileNotFoundError, match="run the 'vild_text' method first"):
        run_benchmark(settings)


def test_study_table_tool(report, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "sam_mask_study.py"
    spec = importlib.util.spec_from_file_location("sam_mask_study", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out, _ = report
    assert tool.closed_gap(15.0, 10.0, 20.0) == 0.5 and tool.closed_gap(1.0, 2.0, 2.0) is None
    assert tool.main([str(out / "report.json"), "--out", str(tmp_path / "t.json")]) == 0
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["seeds"] == [0] and list(table["methods"]) == list(tool.ROLES)
    assert set(table["gap_closed"]) == {
        f"{m}_vs_{b}"
        for m in ("sam_boxes", "sam_mask_head")
        for b in ("mask_head_base", "vild_text")
    }
    with pytest.raises(SystemExit):  # the same seed twice
        tool.main([str(out / "report.json"), str(out / "report.json")])
    capsys.readouterr()
