"""``ovdet pseudo-label`` with the shipped model on a few OV-Shapes images: the json loads in
pycocotools and detectron2, a killed run resumes to the same bytes, shards merge to the same
bytes, bad input is refused with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ovdet.cli import main as cli

from .conftest import MODEL, NUM_SHAPES

FINAL = ("pseudo_labels.json", "summary.json", "errors.json")


def args(shapes, out, *extra: str) -> list[str]:
    return [
        "pseudo-label",
        "--model",
        MODEL,
        "--device",
        "cpu",
        "--input",
        str(shapes / "images"),
        "--output",
        str(out),
        "--score-thresh",
        "0.2",
        "--batch-size",
        "1",
        "--no-progress",
        *extra,
    ]


def run_cli(capsys, argv):
    capsys.readouterr()
    rc = cli(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def final_bytes(out):
    return {name: (out / name).read_bytes() for name in FINAL}


@pytest.fixture(scope="module")
def reference(shapes, tmp_path_factory):
    """An uninterrupted run of the shipped model (score 0.2, batch 1: with larger batches an
    image's scores can differ in the last digits with its batch mates, so shards that batch
    other images together differ from one process in those digits)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert cli(args(shapes, out)) == 0
    return out


def test_output_loads_in_pycocotools(reference):
    from pycocotools.coco import COCO

    coco = COCO(str(reference / "pseudo_labels.json"))
    assert len(coco.getImgIds()) == NUM_SHAPES
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns and all(a["score"] >= 0.2 and a["iscrowd"] == 0 for a in anns)
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    mask = coco.annToMask(anns[0])  # the shipped model has masks: RLE segmentation
    assert mask.shape == (64, 64) and mask.sum() == anns[0]["area"]
    cats = coco.loadCats(coco.getCatIds())
    assert len(cats) == 36 and {c["novel"] for c in cats} == {True, False}
    assert {c["name"] for c in cats if c["novel"]} >= {"red triangle", "red hexagon"}
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["boxes"] == len(anns) and summary["images"] == NUM_SHAPES
    assert sum(summary["score_histogram"]["counts"][:2]) == 0  # nothing below 0.2


def test_output_registers_in_detectron2(reference):
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances
    from detectron2.structures import BoxMode

    name = "ovdet_test_pseudo_labels_shipped"
    register_coco_instances(name, {}, str(reference / "pseudo_labels.json"), "")
    try:
        dicts = DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
    data = json.loads((reference / "pseudo_labels.json").read_text())
    assert len(dicts) == NUM_SHAPES and all(os.path.isfile(d["file_name"]) for d in dicts)
    got = [a["bbox"] for d in dicts for a in d["annotations"]]
    assert all(a["bbox_mode"] == BoxMode.XYWH_ABS for d in dicts for a in d["annotations"])
    np.testing.assert_allclose(got, [a["bbox"] for a in data["annotations"]])


def test_corrupt_image_goes_to_errors_json(reference):
    errors = json.loads((reference / "errors.json").read_text())
    assert len(errors) == 1 and errors[0]["file_name"].endswith("s9_corrupt.png")
    assert "not an image file" in errors[0]["error"]


SLOW_RUN = """
import sys, time
from ovdet.pseudo_label.writer import LabelJournal
_append = LabelJournal.append
def append(self, entries):  # slow enough that the test can kill the run in the middle
    _append(self, entries)
    time.sleep(0.5)
LabelJournal.append = append
from ovdet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def journal_lines(path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def kill_when(command: list[str], ready, timeout: float = 180.0) -> None:
    """Start ``command`` and SIGKILL it as soon as ``ready()`` holds (failing if it ends
    first). The thread counts are this process's: the same float arithmetic."""
    threads = str(torch.get_num_threads())
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        end = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    assert alive and ready(), "the run ended (or timed out) before it could be killed"


def test_killed_then_resumed_equals_uninterrupted_run(shapes, reference, tmp_path, capsys):
    out = tmp_path / "out"
    journal = out / "labels.jsonl"
    kill_when(
        [sys.executable, "-c", SLOW_RUN, *args(shapes, out)], lambda: journal_lines(journal) >= 2
    )
    done = journal_lines(journal)
    assert 2 <= done < NUM_SHAPES + 1
    assert not (out / "pseudo_labels.json").exists()
    rc, stdout, _ = run_cli(capsys, args(shapes, out))
    assert rc == 0 and json.loads(stdout)["resumed"] == done
    assert final_bytes(out) == final_bytes(reference)


def test_two_shards_merged_equal_one_process(shapes, reference, shipped_teacher, tmp_path, capsys):
    """The shards run through the API with the teacher built once (the CLI's settings: the
    same manifest), the merge through the CLI."""
    from ovdet.pseudo_label import run_pseudo_label

    out = tmp_path / "out"
    for index in (1, 0):
        summary = run_pseudo_label(
            teacher=shipped_teacher,
            inputs=[str(shapes / "images")],
            output=out,
            score_thresh=0.2,
            num_shards=2,
            shard_index=index,
            progress=False,
        )
        assert summary["shard"] == f"{index}/2"
    rc, stdout, _ = run_cli(capsys, ["pseudo-label", "--merge-shards", str(out)])
    assert rc == 0 and json.loads(stdout)["images"] == NUM_SHAPES
    assert final_bytes(out) == final_bytes(reference)


def test_other_settings_refused_naming_the_difference(shapes, reference, capsys):
    argv = args(shapes, reference, "--class-thresh", "red circle=0.5")
    rc, _, err = run_cli(capsys, argv)
    assert rc == 2
    assert "holds another pseudo-label run" in err and "'red circle': 0.5" in err


@pytest.mark.parametrize(
    "case, message",
    [
        ("input-missing", r"no image matches input .*nothing\*\.png"),
        ("vocab-empty", r"empty vocabulary spec"),
        (
            "class-unknown",
            r"--class-thresh names class 'purple cow', which is not in the "
            r"vocabulary \(36 classes",
        ),
        ("thresh-bad", r"--score-thresh must be in \[0, 1\].*1\.5"),
        ("output-missing", r"--output is required"),
        ("captions-missing", r"--captions .*none\.json not found"),
        ("model-unknown", r"no-such-model"),
    ],
)
def test_bad_input_refused_with_one_line(shapes, tmp_path, capsys, case, message):
    out = tmp_path / "out"
    argv = {
        "input-missing": args(shapes, out)[:6]
        + [str(tmp_path / "nothing*.png"), "--output", str(out)],
        "vocab-empty": args(shapes, out, "--vocab", ""),
        "class-unknown": args(shapes, out, "--class-thresh", "purple cow=0.3"),
        "thresh-bad": args(shapes, out) + ["--score-thresh", "1.5"],
        "output-missing": ["pseudo-label", "--input", str(shapes / "images")],
        "captions-missing": args(shapes, out, "--captions", str(tmp_path / "none.json")),
        "model-unknown": [
            "pseudo-label",
            "--model",
            "no-such-model",
            "--input",
            str(shapes / "images"),
            "--output",
            str(out),
        ],
    }[case]
    rc, _, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 2, err
    assert lines[0].startswith("ovdet pseudo-label: error: ")
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not (out / "run.json").exists()


def test_captions_restrict_the_shipped_model(shapes, shipped_teacher, tmp_path):
    from ovdet.pseudo_label import run_pseudo_label

    out = tmp_path / "out"
    run_pseudo_label(
        teacher=shipped_teacher,
        inputs=[str(shapes / "images")],
        output=out,
        captions=shapes / "captions.json",
        score_thresh=0.2,
        progress=False,
    )
    data = json.loads((out / "pseudo_labels.json").read_text())
    captions = json.loads((shapes / "captions.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {i["id"]: os.path.basename(i["file_name"]) for i in data["images"]}
    assert data["annotations"]
    for ann in data["annotations"]:
        text = " ".join(captions[files[ann["image_id"]]]).lower()
        assert names[ann["category_id"]] in text
