"""Per-image vocabularies from captions."""

from __future__ import annotations

import json

import pytest

from ovdet.pseudo_label import CaptionIndex, class_pattern, mentioned_classes, run_pseudo_label
from ovdet.utils.errors import InputError

from .conftest import write_images

NAMES = ["red circle", "blue star", "star", "t-shirt"]


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("A red circle.", [0]),
        ("Two RED   Circles and a blue star", [0, 1, 2]),
        ("stars everywhere", [2]),
        ("a starfish, a bored circle, a redcircle", []),  # whole words only
        ("red circled", []),
        ("three T-Shirts", [3]),
        ("", []),
    ],
)
def test_mentioned_classes(caption, expected):
    patterns = [class_pattern(n) for n in NAMES]
    assert mentioned_classes([caption], patterns) == expected


def test_caption_mapping_and_base_name_match(tmp_path):
    path = tmp_path / "caps.json"
    path.write_text(json.dumps({"a/x.png": "a blue star", "y.png": ["nothing", "Red circle!"]}))
    index = CaptionIndex(path, NAMES)
    assert index.classes_of("a/x.png") == [1, 2]
    assert index.classes_of("other/dir/x.png") == [1, 2]  # unique base name
    assert index.classes_of("y.png") == [0]
    assert index.classes_of("z.png") == []  # no caption: no classes


def test_coco_captions(tmp_path):
    path = tmp_path / "captions_train.json"
    data = {
        "images": [{"id": 7, "file_name": "p.jpg"}, {"id": 8, "file_name": "q.jpg"}],
        "annotations": [
            {"image_id": 7, "caption": "a star"},
            {"image_id": 7, "caption": "a t-shirt"},
            {"image_id": 8, "caption": "grass"},
        ],
    }
    path.write_text(json.dumps(data))
    index = CaptionIndex(path, NAMES)
    assert index.classes_of("p.jpg") == [2, 3]
    assert index.classes_of("q.jpg") == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", r"must be a JSON object"),
        ("{not json", r"is not a JSON file"),
        ('{"a.png": 3}', r"the captions of 'a.png' must be a caption string"),
        ('{"annotations": []}', r"COCO captions json without an 'images' list"),
        (
            '{"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 2, '
            '"caption": "x"}]}',
            r"annotations\[0\] has image_id 2",
        ),
    ],
)
def test_bad_captions_files(tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        CaptionIndex(path, NAMES)
    with pytest.raises(FileNotFoundError, match=r"--captions .*none\.json not found"):
        CaptionIndex(tmp_path / "none.json", NAMES)


def test_run_with_captions_labels_only_mentioned_classes(tmp_path, fake_teacher):
    write_images(tmp_path / "img", 3)
    caps = tmp_path / "caps.json"
    caps.write_text(
        json.dumps(
            {
                "im00.png": "Two blue stars",
                "im01.png": "a dog",
                "im02.png": "a red circle and a green square",
            }
        )
    )
    out = tmp_path / "out"
    summary = run_pseudo_label(
        teacher=fake_teacher,
        inputs=[str(tmp_path / "img")],
        output=out,
        captions=caps,
        score_thresh=0.1,
        progress=False,
    )
    data = json.loads((out / "pseudo_labels.json").read_text())
    by_image = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["category_id"])
    assert by_image == {1: [2], 3: [1, 3]}
    assert len(data["images"]) == 3 and summary["images_with_boxes"] == 2
    assert fake_teacher.seen == 2  # the image whose caption names no class is not labelled


def test_captions_content_is_compared_on_resume(tmp_path, fake_teacher):
    write_images(tmp_path / "img", 2)
    first, moved, other = (tmp_path / n for n in ("a.json", "moved.json", "b.json"))
    first.write_text(json.dumps({"im00.png": "a blue star"}))
    moved.write_text(first.read_text())
    other.write_text(json.dumps({"im00.png": "a red circle"}))

    def run(captions):
        return run_pseudo_label(
            teacher=fake_teacher,
            inputs=[str(tmp_path / "img")],
            output=tmp_path / "out",
            captions=captions,
            progress=False,
        )

    run(first)
    assert run(moved)["resumed"] == 2  # the same content elsewhere: the same run
    with pytest.raises(
        InputError,
        match=r"differs from this one in captions: .*a\.json vs "
        r".*b\.json",
    ):
        run(other)
    with pytest.raises(InputError, match=r"captions: .*a\.json vs none"):
        run(None)
