"""The merge rule of self-training pinned on hand-made boxes (ovdet.self_train.merge)."""

from __future__ import annotations

import pytest

from ovdet.self_train import MergeSettings, merge_pseudo_labels
from ovdet.utils.errors import InputError

# vocabulary of the teacher: ids 1..3; "cat" has gold boxes (base), "dog" / "owl" do not
CATS = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "owl"}]


def gold_set():
    return {
        "images": [{"id": 7, "file_name": "a.png", "width": 100, "height": 100},
                   {"id": 8, "file_name": "b.png", "width": 100, "height": 100}],
        # gold ids differ from the vocabulary's: mapped by name
        "categories": [{"id": 11, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 11, "bbox": [0, 0, 20, 20], "area": 400,
             "iscrowd": 0},
        ],
    }  # fmt: skip


def box(i, image, cat, bbox, score):
    return {"id": i, "image_id": image, "category_id": cat, "bbox": bbox,
            "area": bbox[2] * bbox[3], "score": score, "iscrowd": 0}  # fmt: skip


def pseudo_set(anns):
    return {"images": gold_set()["images"], "categories": CATS, "annotations": anns}


def merged_of(anns, **kw):
    settings = MergeSettings(**{"high": 0.5, "low": 0.2, **kw})
    return merge_pseudo_labels(gold_set(), pseudo_set(anns), settings)


def test_gold_kept_and_mapped_by_name():
    merged, stats = merged_of([])
    assert merged["categories"] == CATS
    assert [(a["image_id"], a["category_id"], a["bbox"]) for a in merged["annotations"]] == [
        (7, 1, [0, 0, 20, 20])
    ]
    assert stats["gold"] == 1 and stats["pseudo_boxes"] == 0
    assert stats["pseudo_classes"] == ["dog", "owl"]  # no gold box: novel


def test_gold_wins_same_class_and_other_class():
    anns = [
        box(1, 7, 1, [1, 1, 20, 20], 0.9),  # base class: never a pseudo label
        box(2, 7, 2, [1, 1, 20, 20], 0.9),  # novel, IoU 0.9 with the gold cat: gold wins
        box(3, 7, 2, [10, 10, 20, 20], 0.9),  # IoU 100/700 = 0.14 with the gold box: kept
    ]
    merged, stats = merged_of(anns)
    pseudo = [a for a in merged["annotations"] if a.get("pseudo")]
    assert [a["bbox"] for a in pseudo] == [[10, 10, 20, 20]]
    assert stats["dropped"] == {"class": 1, "low_score": 0, "gold_overlap": 1, "nms": 0}


def test_gold_iou_threshold_is_inclusive():
    # IoU exactly 0.5 with the gold box ([0,0,20,20] vs [0,0,20,10]: 200 / 400)
    merged, stats = merged_of([box(1, 7, 2, [0, 0, 20, 10], 0.9)])
    assert stats["dropped"]["gold_overlap"] == 1
    merged, stats = merged_of([box(1, 7, 2, [0, 0, 20, 10], 0.9)], gold_iou=0.51)
    assert stats["pseudo_boxes"] == 1


def test_uncertain_band_becomes_ignore_regions_and_low_scores_go():
    anns = [
        box(1, 8, 2, [0, 0, 10, 10], 0.5),  # = high: a label
        box(2, 8, 3, [50, 50, 10, 10], 0.49),  # in [low, high): ignore region
        box(3, 8, 3, [80, 80, 10, 10], 0.2),  # = low: ignore region
        box(4, 8, 2, [30, 30, 10, 10], 0.19),  # below low: dropped
    ]
    merged, stats = merged_of(anns)
    got = {tuple(a["bbox"]): (a["iscrowd"], a["score"]) for a in merged["annotations"]
           if a.get("pseudo")}  # fmt: skip
    want = {(0, 0, 10, 10): (0, 0.5), (50, 50, 10, 10): (1, 0.49), (80, 80, 10, 10): (1, 0.2)}
    assert got == want
    assert stats["pseudo_boxes"] == 1 and stats["ignore_regions"] == 2
    assert stats["dropped"]["low_score"] == 1
    assert stats["pseudo_per_class"] == {"dog": 1} and stats["ignore_per_class"] == {"owl": 2}


def test_class_agnostic_nms_keeps_the_higher_score():
    anns = [box(1, 8, 2, [0, 0, 10, 10], 0.6), box(2, 8, 3, [0, 0, 10, 11], 0.8)]
    merged, stats = merged_of(anns)
    pseudo = [a for a in merged["annotations"] if a.get("pseudo")]
    assert [(a["category_id"], a["score"]) for a in pseudo] == [(3, 0.8)]
    assert stats["dropped"]["nms"] == 1


def test_ids_renumbered_and_pseudo_classes_all():
    anns = [box(9, 8, 1, [60, 60, 10, 10], 0.9), box(5, 8, 2, [0, 0, 10, 10], 0.9)]
    merged, stats = merge_pseudo_labels(
        gold_set(), pseudo_set(anns), MergeSettings(0.5, 0.2), pseudo_classes=["cat", "dog"]
    )
    assert [a["id"] for a in merged["annotations"]] == [1, 2, 3]
    assert stats["pseudo_boxes"] == 2


def test_refusals():
    with pytest.raises(InputError, match="--low .* is above --high"):
        merged_of([], high=0.2, low=0.3)
    with pytest.raises(InputError, match="--gold-iou must be a number in"):
        merged_of([], gold_iou=1.5)
    with pytest.raises(InputError, match="image 99, which the gold training set does not have"):
        merged_of([box(1, 99, 2, [0, 0, 5, 5], 0.9)])
    with pytest.raises(InputError, match="pseudo classes \\['zebra'\\]"):
        merge_pseudo_labels(gold_set(), pseudo_set([]), MergeSettings(), pseudo_classes=["zebra"])
    gold = gold_set()
    gold["categories"] = [{"id": 11, "name": "lion"}]
    with pytest.raises(InputError, match="gold class 'lion' is not in the teacher's vocabulary"):
        merge_pseudo_labels(gold, pseudo_set([]), MergeSettings())
