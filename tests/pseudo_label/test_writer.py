"""The journal and the streaming writer: memory does not grow with the labels."""

from __future__ import annotations

import gc
import json
import tracemalloc
from contextlib import ExitStack

from ovdet.pseudo_label import LabelJournal, run_pseudo_label, write_outputs

from .conftest import write_images

NAMES = ["a", "b"]


def _entries(first: int, count: int, boxes: int) -> list[dict]:
    anns = [
        {
            "category_id": 1 + k % 2,
            "bbox": [k, k, 5.5, 4.25],
            "area": 23.375,
            "score": round(1 - k / (boxes + 1), 6),
            "iscrowd": 0,
        }
        for k in range(boxes)
    ]
    return [
        {"image_id": i, "file_name": f"f{i}.png", "height": 8, "width": 9, "annotations": anns}
        for i in range(first, first + count)
    ]


def _write(tmp_path, images: int, boxes: int):
    """A journal of ``images`` images, appended in batches of 10, and its final files;
    returns (journal, peak bytes allocated while writing the final files)."""
    out = tmp_path / f"run{images}"
    out.mkdir()
    journal = LabelJournal(out / "labels.jsonl", {i: f"f{i}.png" for i in range(1, images + 1)})
    for first in range(1, images + 1, 10):
        journal.append(_entries(first, min(10, images + 1 - first), boxes))
    gc.collect()
    tracemalloc.start()
    with ExitStack() as stack:
        write_outputs(out, list(range(1, images + 1)), journal.reader(stack), NAMES, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return journal, peak


def test_journal_keeps_offsets_not_labels(tmp_path):
    small, peak_small = _write(tmp_path, 4, 200)
    large, peak_large = _write(tmp_path, 60, 200)
    # the journal object holds an int offset per image and nothing of the labels
    assert set(vars(large)) == {"path", "offsets", "failed", "_file_names"}
    assert all(isinstance(v, int) for v in large.offsets.values()) and not large.failed
    # 60 images of 200 boxes are ~1.3 MB of json: writing them costs what 4 images cost
    size = (tmp_path / "run60" / "pseudo_labels.json").stat().st_size
    assert size > 1_000_000
    assert peak_large < peak_small + 100_000, (peak_small, peak_large)
    data = json.loads((tmp_path / "run60" / "pseudo_labels.json").read_text())
    assert [a["id"] for a in data["annotations"]] == list(range(1, 60 * 200 + 1))


def test_torn_last_line_is_cut_and_redone(tmp_path):
    journal, _ = _write(tmp_path, 3, 2)
    with open(journal.path, "ab") as f:
        f.write(b'{"image_id": 4, "file_na')
    again = LabelJournal(journal.path, {i: f"f{i}.png" for i in range(1, 5)})
    assert again.done() == {1, 2, 3}
    assert journal.path.read_bytes().endswith(b"\n")


def test_summary_counts_and_histogram(tmp_path, fake_teacher):
    write_images(tmp_path / "img", 2)
    (tmp_path / "img" / "broken.png").write_bytes(b"xx")
    out = tmp_path / "out"
    run_pseudo_label(
        teacher=fake_teacher,
        inputs=[str(tmp_path / "img")],
        output=out,
        score_thresh=0.15,
        progress=False,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2 and summary["unreadable_images"] == 1
    assert summary["boxes_per_class"] == {"red circle": 2, "blue star": 2, "green square": 2}
    counts = summary["score_histogram"]["counts"]
    assert summary["score_histogram"]["bins"][0] == 0.0 and len(counts) == 10
    # bins are [lo, hi): 0.9 in float32 is 0.89999998 (bin 8); 0.2 is 0.20000000298 (bin 2)
    assert counts[8] == 2 and counts[2] == 2 and sum(counts) == summary["boxes"] == 6
    errors = json.loads((out / "errors.json").read_text())
    assert [(e["image_id"], e["file_name"].endswith("broken.png")) for e in errors] == [(1, True)]
