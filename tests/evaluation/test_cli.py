"""``ovdet evaluate`` through the ``ovdet`` command (errors: one line, exit status 2)."""

from __future__ import annotations

import json

import pytest

from ovdet.cli import main as ovdet_main


def main(argv: list[str]) -> int:
    return ovdet_main(["evaluate", *argv])


@pytest.fixture
def pred_file(tmp_path, perfect_results):
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(perfect_results))
    return path


def test_json_output(sample_gt, pred_file, capsys):
    rc = main(
        [
            "--gt",
            str(sample_gt),
            "--pred",
            str(pred_file),
            "--novel",
            "bus,skateboard",
            "--iou-types",
            "bbox,segm",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"bbox", "segm"}
    for task in out.values():
        for key in ("AP", "AP50", "AP50_base", "AP50_novel"):
            assert task[key] == pytest.approx(100.0)


def test_table_output_and_novel_file(sample_gt, pred_file, tmp_path, capsys):
    names = tmp_path / "novel.txt"
    names.write_text("# novel classes\nbus\n41\n")
    assert main(["--gt", str(sample_gt), "--pred", str(pred_file), "--novel-file", str(names)]) == 0
    out = capsys.readouterr().out
    assert "AP50_novel" in out and "100.00" in out and "bbox" in out


def test_bad_inputs(sample_gt, pred_file, tmp_path, capsys):
    assert main(["--gt", str(tmp_path / "gt.json"), "--pred", str(pred_file)]) == 2
    assert "--gt file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"annotations": []}))
    assert main(["--gt", str(sample_gt), "--pred", str(bad)]) == 2
    assert "must be a json list" in capsys.readouterr().err
    preds = json.loads(pred_file.read_text())
    del preds[2]["bbox"]
    bad.write_text(json.dumps(preds))
    assert main(["--gt", str(sample_gt), "--pred", str(bad)]) == 2
    assert "[2] has no 'bbox'" in capsys.readouterr().err
    preds[2]["bbox"], preds[4]["category_id"] = [0, 0, 1, 1], 12345
    bad.write_text(json.dumps(preds))
    assert main(["--gt", str(sample_gt), "--pred", str(bad), "--json"]) == 2
    assert "12345" in capsys.readouterr().err
