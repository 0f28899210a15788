"""``ovdet demo`` runs in-process with the shipped assets (no training) and writes its outputs."""

from __future__ import annotations

import json
import shutil

import pytest
from pycocotools.coco import COCO

from ovdet.cli import main as cli
from ovdet.demo import run_demo
from ovdet.model_zoo.assets import default_assets_dir, verify_assets


def test_shipped_assets_are_small_and_intact():
    manifest = verify_assets(default_assets_dir())
    assert sum(f["bytes"] for f in manifest["files"].values()) < 8e6
    assert manifest["novel"] and set(manifest["novel"]) < set(manifest["classes"])
    assert manifest["command"].startswith("ovdet bench ov-shapes")


def test_demo_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["demo", "--out", str(out), "--num-images", "2", "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "novel" in table and "box AP50" in table
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["000001.png", "000002.png"]
    gt = COCO(str(out / "ground_truth.json"))
    results = json.loads((out / "results.json").read_text())
    assert results, "the shipped detector found nothing"
    dets = gt.loadRes(str(out / "results.json"))
    assert set(dets.getImgIds()) <= set(gt.getImgIds())
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"AP50", "AP50_base", "AP50_novel"} <= set(metrics)


def test_demo_custom_vocabulary(tmp_path):
    summary = run_demo(
        tmp_path / "demo",
        num_images=1,
        vocabulary=["red circle", "purple heart"],
        device="cpu",
        show_thresh=0.0,
    )
    assert summary["vocabulary"] == ["red circle", "purple heart"]
    names = {d["name"] for img in summary["images"] for d in img["detections"]}
    assert names <= {"red circle", "purple heart"}
    gt = json.loads((tmp_path / "demo" / "ground_truth.json").read_text())
    assert "purple heart" in {c["name"] for c in gt["categories"]}  # scored as a class without GT


def test_demo_rejects_corrupt_assets(tmp_path):
    assets = tmp_path / "assets"
    shutil.copytree(default_assets_dir(), assets)
    data = bytearray((assets / "detector.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (assets / "detector.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        run_demo(tmp_path / "demo", num_images=1, assets=assets, device="cpu")
