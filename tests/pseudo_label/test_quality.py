"""Pseudo-label precision / recall against ground truth, pinned on hand-made boxes."""

from __future__ import annotations

import json

import pytest

from ovdet.pseudo_label.quality import label_quality
from ovdet.utils.errors import InputError


def _write(path, images, categories, annotations):
    path.write_text(json.dumps({"images": images, "categories": categories,
                                "annotations": annotations}))  # fmt: skip
    return path


@pytest.fixture
def files(tmp_path):
    cats = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog", "novel": True}]
    # ground truth: other ids, same file names
    gt = _write(
        tmp_path / "gt.json",
        [{"id": 10, "file_name": "a.png"}, {"id": 11, "file_name": "b.png"}],
        [{"id": 7, "name": "dog"}, {"id": 8, "name": "cat"}],
        [
            {"id": 1, "image_id": 10, "category_id": 8, "bbox": [0, 0, 10, 10]},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [20, 20, 10, 10]},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [0, 0, 10, 10]},
            {"id": 4, "image_id": 11, "category_id": 7, "bbox": [50, 50, 5, 5], "iscrowd": 1},
        ],
    )
    pl = _write(
        tmp_path / "pl.json",
        [{"id": 1, "file_name": "imgs/a.png"}, {"id": 2, "file_name": "imgs/b.png"}],
        cats,
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
            # a duplicate of the same cat: only one can match
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.4},
            # right place, wrong class (a cat where a dog is): a false positive
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.8},
            {"id": 4, "image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 9], "score": 0.6},
            {"id": 5, "image_id": 2, "category_id": 2, "bbox": [50, 50, 5, 5], "score": 0.95},
        ],
    )
    return pl, gt


def test_precision_recall_per_group_and_threshold(files):
    pl, gt = files
    out = label_quality(pl, gt, thresholds=[0.5, 0.3])
    assert out["novel"] == ["dog"] and out["images"] == 2
    low, high = out["rows"]
    assert (low["threshold"], high["threshold"]) == (0.3, 0.5)
    # 0.3: cats 3 boxes, 1 object, 1 match; dogs 2 boxes (one on a crowd box), 2 objects, 1 match
    assert low["base"] == {"boxes": 3, "objects": 1, "true_positives": 1,
                           "precision": pytest.approx(1 / 3), "recall": 1.0}  # fmt: skip
    assert low["novel"] == {"boxes": 2, "objects": 2, "true_positives": 1,
                            "precision": 0.5, "recall": 0.5}  # fmt: skip
    assert low["all"]["true_positives"] == 2 and low["all"]["precision"] == pytest.approx(0.4)
    # 0.5: the 0.4 duplicate is gone
    assert high["base"]["boxes"] == 2 and high["base"]["precision"] == 0.5


def test_iou_threshold_decides_a_match(files):
    pl, gt = files
    strict = label_quality(pl, gt, thresholds=[0.0], iou=0.95)["rows"][0]
    assert strict["novel"]["true_positives"] == 0  # 10x9 vs 10x10: IoU 0.9
    assert strict["base"]["true_positives"] == 1


def test_refusals(files, tmp_path):
    pl, gt = files
    with pytest.raises(FileNotFoundError, match="missing.json"):
        label_quality(pl, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"images": []}')
    with pytest.raises(InputError, match="categories"):
        label_quality(pl, tmp_path / "bad.json")
    other = _write(tmp_path / "other.json", [{"id": 1, "file_name": "z.png"}], [], [])
    with pytest.raises(InputError, match="not in the ground truth"):
        label_quality(pl, other)
    with pytest.raises(InputError, match="iou"):
        label_quality(pl, gt, iou=0.0)
