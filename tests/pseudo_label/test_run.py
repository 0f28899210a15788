"""Runs with a fake teacher: resume, refusing another run, shards and their merge, COCO input."""

from __future__ import annotations

import json
import shutil

import pytest

from ovdet.pseudo_label import merge_shards, run_pseudo_label
from ovdet.utils.errors import InputError

from .conftest import FakeTeacher, write_images

FINAL = ("pseudo_labels.json", "summary.json", "errors.json")


def final_bytes(out) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in FINAL}


def run(tmp_path, out_name="out", **kwargs):
    folder = tmp_path / "img"
    if not folder.is_dir():
        write_images(folder, 7)
        (folder / "im03.png").write_bytes(b"broken")  # one unreadable image
    kwargs.setdefault("teacher", FakeTeacher())
    kwargs.setdefault("score_thresh", 0.1)
    return run_pseudo_label(
        inputs=[str(folder)], output=tmp_path / out_name, progress=False, **kwargs
    )


def test_same_run_again_resumes_with_nothing_to_do(tmp_path):
    first = run(tmp_path, batch_size=3)
    before = final_bytes(tmp_path / "out")
    teacher = FakeTeacher()
    again = run(tmp_path, teacher=teacher, batch_size=2)  # the batch size may change
    assert (first["labelled"], again["resumed"], again["labelled"]) == (7, 6, 1)
    assert teacher.seen == 0  # only the unreadable image is retried
    assert final_bytes(tmp_path / "out") == before
    assert first["failed"] == 1 and first["images"] == 6 and first["boxes"] == 18


@pytest.mark.parametrize(
    "change, message",
    [
        ({"score_thresh": 0.5}, r"score threshold: 0\.1 vs 0\.5"),
        ({"nms": 0.5}, r"filters: .*'nms': None.* vs .*'nms': 0\.5"),
        ({"class_thresh": "blue star=0.2"}, r"filters: .*'blue star': 0\.2"),
    ],
)
def test_other_settings_are_refused_then_overwrite_starts_over(tmp_path, change, message):
    run(tmp_path)
    with pytest.raises(
        InputError,
        match=r"holds another pseudo-label run .*differs from this "
        r"one in .*" + message + r".*--overwrite",
    ):
        run(tmp_path, **change)
    summary = run(tmp_path, overwrite=True, **change)
    assert summary["resumed"] == 0 and summary["labelled"] == 7


def test_other_inputs_are_refused(tmp_path):
    run(tmp_path)
    shutil.copy(tmp_path / "img" / "im00.png", tmp_path / "img" / "im99.png")
    with pytest.raises(InputError, match=r"inputs: 7 images vs 8, first difference at image id"):
        run(tmp_path)


def test_outputs_without_manifest_are_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pseudo_labels.json").write_text("{}")
    with pytest.raises(
        InputError,
        match=r"holds pseudo-label outputs \(pseudo_labels\.json\) "
        r"without a run\.json",
    ):
        run(tmp_path)


def test_three_shards_merged_equal_one_process(tmp_path):
    run(tmp_path, "one")
    for index in (2, 0, 1):
        summary = run(tmp_path, "sharded", num_shards=3, shard_index=index)
        assert summary["shard"] == f"{index}/3"
        assert not (tmp_path / "sharded" / "pseudo_labels.json").exists()
    assert sorted(p.name for p in (tmp_path / "sharded" / "shards").iterdir()) == ["0", "1", "2"]
    merged = merge_shards(tmp_path / "sharded")
    assert merged["images"] == 6
    assert final_bytes(tmp_path / "sharded") == final_bytes(tmp_path / "one")


def test_merge_refuses_missing_unfinished_or_mixed_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no shards/ folder; run the shards first"):
        merge_shards(tmp_path / "sharded")
    run(tmp_path, "sharded", num_shards=2, shard_index=0)
    with pytest.raises(InputError, match=r"shard 1 of 2 is missing .*--shard-index 1"):
        merge_shards(tmp_path / "sharded")
    run(tmp_path, "sharded", num_shards=2, shard_index=1, score_thresh=0.5)
    with pytest.raises(
        InputError,
        match=r"shard 1 is another run than shard 0: score "
        r"threshold: 0\.1 vs 0\.5",
    ):
        merge_shards(tmp_path / "sharded")
    run(tmp_path, "sharded", num_shards=2, shard_index=1, overwrite=True)
    journal = tmp_path / "sharded" / "shards" / "1" / "labels.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))  # as if killed before its last image
    with pytest.raises(InputError, match=r"shard 1 has not finished \(1 of 3 images to label\)"):
        merge_shards(tmp_path / "sharded")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_shards": 2}, r"--num-shards and --shard-index go together"),
        ({"num_shards": 2, "shard_index": 2}, r"--shard-index must be in \[0, 1\].*got 2"),
        ({"num_shards": 0, "shard_index": 0}, r"--num-shards must be >= 1, got 0"),
        ({"batch_size": 0}, r"--batch-size must be an integer >= 1, got 0"),
        ({"max_per_image": -1}, r"--max-per-image must be an integer >= 1"),
    ],
)
def test_bad_run_options(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        run(tmp_path, **kwargs)
    assert not (tmp_path / "out" / "run.json").exists()


def test_coco_json_input_keeps_ids_and_registers(tmp_path):
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    paths = write_images(tmp_path / "root" / "sub", 2)
    coco = {
        "images": [
            {"id": 20, "file_name": "sub/im01.png"},
            {"id": 10, "file_name": "sub/im00.png"},
        ],
        "annotations": [],
        "categories": [],
    }
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    out = tmp_path / "out"
    run_pseudo_label(
        teacher=FakeTeacher(),
        coco_json=tmp_path / "gt.json",
        image_root=tmp_path / "root",
        output=out,
        progress=False,
    )
    data = json.loads((out / "pseudo_labels.json").read_text())
    assert [(i["id"], i["file_name"]) for i in data["images"]] == [
        (20, "sub/im01.png"),
        (10, "sub/im00.png"),
    ]
    assert data["categories"][2] == {"id": 3, "name": "green square", "novel": True}
    name = "ovdet_test_pseudo_labels_coco_input"
    register_coco_instances(name, {}, str(out / "pseudo_labels.json"), str(tmp_path / "root"))
    try:
        dicts = DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
    assert [(d["image_id"], d["file_name"]) for d in dicts] == [
        (10, str(paths[0])),
        (20, str(paths[1])),
    ]
    assert [len(d["annotations"]) for d in dicts] == [2, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"coco_json": "none.json", "image_root": "."}, r"--coco-json none\.json not found"),
        ({"coco_json": "gt.json"}, r"--coco-json needs --image-root"),
        ({"image_root": "."}, r"--image-root goes with --coco-json"),
        ({}, r"no images: pass --input"),
    ],
)
def test_bad_coco_inputs(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gt.json").write_text('{"images": []}')
    with pytest.raises((InputError, FileNotFoundError), match=message):
        run_pseudo_label(teacher=FakeTeacher(), output=tmp_path / "out", **kwargs)


def test_cli_is_registered_and_merge_errors_are_one_line(tmp_path, capsys):
    from ovdet.cli import main as cli

    assert cli(["--help"]) == 0 and "pseudo-label" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli(["pseudo-label", "--help"])
    assert exc.value.code == 0 and "--merge-shards" in capsys.readouterr().out
    assert cli(["pseudo-label", "--merge-shards", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("ovdet pseudo-label: error: --merge-shards ") and len(err) == 2
    assert "no shards/ folder" in err[0]
