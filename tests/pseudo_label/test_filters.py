"""The filter rules, pinned on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest

from ovdet.pseudo_label.filters import (
    FilterSettings,
    check_filter_settings,
    filter_detections,
    parse_class_thresh,
)
from ovdet.utils.errors import InputError

NAMES = ["red circle", "blue star", "green square"]

# boxes 0 and 1 overlap (IoU 0.81), box 2 overlaps 0 a little (IoU ~0.14), box 3 apart
BOXES = np.array([[0, 0, 10, 10], [0, 0, 9, 9], [5, 5, 15, 15], [50, 50, 60, 60]], dtype=np.float32)


def keep(scores, labels, boxes=BOXES, allowed=None, **settings):
    return filter_detections(
        boxes, scores, labels, FilterSettings(**settings), allowed=allowed
    ).tolist()


def test_score_thresh_is_inclusive_and_order_is_by_score():
    scores = [0.3, 0.8, 0.29999, 0.5]
    assert keep(scores, [0, 1, 0, 2], score_thresh=0.3) == [1, 3, 0]
    assert keep(scores, [0, 1, 0, 2], score_thresh=0.0) == [1, 3, 0, 2]


def test_ties_keep_the_teachers_order():
    assert keep([0.5, 0.5, 0.5, 0.7], [0, 1, 2, 0], score_thresh=0.1) == [3, 0, 1, 2]


def test_class_thresh_replaces_the_global_one_both_ways():
    scores = [0.35, 0.35, 0.6, 0.6]
    labels = [0, 1, 2, 0]
    # class 0 lower than the global threshold, class 2 higher
    got = keep(scores, labels, score_thresh=0.5, class_thresh={0: 0.3, 2: 0.7})
    assert got == [3, 0]


def test_per_class_nms_only_within_a_class():
    scores = [0.9, 0.8, 0.7, 0.6]
    assert keep(scores, [0, 0, 0, 0], score_thresh=0.0, nms=0.5) == [0, 2, 3]
    assert keep(scores, [0, 1, 0, 0], score_thresh=0.0, nms=0.5) == [0, 1, 2, 3]
    # a strict IoU also removes the little overlap of box 2
    assert keep(scores, [0, 0, 0, 0], score_thresh=0.0, nms=0.1) == [0, 3]


def test_agnostic_nms_across_classes():
    scores = [0.8, 0.9, 0.7, 0.6]
    assert keep(scores, [0, 1, 2, 2], score_thresh=0.0, agnostic_nms=0.5) == [1, 2, 3]
    assert keep(scores, [0, 1, 2, 2], score_thresh=0.0) == [1, 0, 2, 3]


def test_max_per_image_keeps_the_best():
    assert keep([0.1, 0.4, 0.3, 0.2], [0, 1, 2, 0], score_thresh=0.0, max_per_image=2) == [1, 2]


def test_allowed_classes_and_empty_inputs():
    assert keep([0.9, 0.8, 0.7, 0.6], [0, 1, 2, 1], score_thresh=0.0, allowed=[1]) == [1, 3]
    assert keep([0.9, 0.8, 0.7, 0.6], [0, 1, 2, 1], score_thresh=0.0, allowed=[]) == []
    empty = filter_detections(np.zeros((0, 4)), [], [], FilterSettings(nms=0.5, agnostic_nms=0.5))
    assert empty.dtype == np.int64 and empty.shape == (0,)


def test_filters_apply_in_order_threshold_nms_then_limit():
    # box 1 is the best but below its class threshold: box 0 survives NMS
    got = keep(
        [0.6, 0.9, 0.5, 0.4],
        [0, 0, 1, 1],
        score_thresh=0.3,
        class_thresh={0: 0.95},
        nms=0.5,
        max_per_image=1,
    )
    assert got == [2]


def test_parse_class_thresh():
    assert parse_class_thresh("red circle=0.5, Blue  Star=0.25", NAMES) == {0: 0.5, 1: 0.25}
    assert parse_class_thresh({"green square": 1}, NAMES) == {2: 1.0}
    assert parse_class_thresh(None, NAMES) == {}


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            "purple cow=0.5",
            r"--class-thresh names class 'purple cow', which is not in the "
            r"vocabulary \(3 classes: red circle",
        ),
        ("red circle=high", r"--class-thresh 'red circle' must be a number in \[0, 1\]"),
        ("red circle=1.5", r"--class-thresh 'red circle' must be in \[0, 1\].*1\.5"),
        ("red circle", r"entry 'red circle' is not NAME=VALUE"),
        ("red circle=0.1,red circle=0.2", r"gives class 'red circle' twice"),
    ],
)
def test_parse_class_thresh_refuses(spec, message):
    with pytest.raises(InputError, match=message):
        parse_class_thresh(spec, NAMES)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"score_thresh": float("nan")}, r"--score-thresh must be in \[0, 1\].*nan"),
        ({"score_thresh": "0.3"}, r"--score-thresh must be a number"),
        ({"nms": 0}, r"--nms is an IoU in \(0, 1\]"),
        ({"agnostic_nms": 2.0}, r"--agnostic-nms must be in \[0, 1\]"),
        ({"max_per_image": 0}, r"--max-per-image must be an integer >= 1, got 0"),
    ],
)
def test_check_filter_settings_refuses(kwargs, message):
    with pytest.raises(InputError, match=message):
        check_filter_settings(names=NAMES, **kwargs)


def test_min_score_is_the_lowest_threshold():
    settings = check_filter_settings(score_thresh=0.5, class_thresh="blue star=0.2", names=NAMES)
    assert settings.min_score() == 0.2
    assert settings.to_json(NAMES)["class_thresh"] == {"blue star": 0.2}
