"""ovdet.data.check: the report API, image modes, registered datasets (the bad-input kinds
are in tests/bad_inputs/test_evaluate_and_data.py)."""

from __future__ import annotations

import copy
import json

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from ovdet.data import COCOFormatError, register_ov_dataset
from ovdet.data.check import (
    CheckReport,
    Issue,
    check_coco_dataset,
    check_coco_dict,
    check_registered_dataset,
)


@pytest.fixture(scope="module")
def sample(test_data) -> dict:
    return json.loads((test_data / "coco_sample" / "annotations.json").read_text())


def tiny(width: int = 40, height: int = 30) -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "height": height, "width": width}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8], "area": 80,
             "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }  # fmt: skip


def test_sample_report_api(coco_sample):
    json_file, images = coco_sample
    report = check_coco_dataset(json_file, images)
    assert isinstance(report, CheckReport) and report.ok and report.errors == []
    assert report.codes("warning") == {"category.unused", "image.no_annotations"}
    assert report.stats == {
        "images_checked": "exist",
        "image_root": str(images),
        "images": 6,
        "annotations": 36,
        "categories": 80,
    }
    assert report.raise_if_errors() is report
    d = report.to_dict()
    assert d["ok"] is True and d["errors"] == [] and len(d["warnings"]) == 2
    assert "OK: no errors (2 kinds of warning)" in report.format()


def test_errors_raise_with_a_summary(sample):
    data = copy.deepcopy(sample)
    data["annotations"][2]["bbox"][2] = -1
    data["annotations"][5]["category_id"] = 1000
    report = check_coco_dict(data, "gt.json")
    assert not report.ok
    assert [i.code for i in report.errors] == ["bbox.negative_size", "annotation.unknown_category"]
    issue = report.get("bbox.negative_size")
    assert isinstance(issue, Issue) and issue.severity == "error" and issue.count == 1
    assert issue.examples[0].startswith("annotations[2] (id=")
    with pytest.raises(COCOFormatError) as err:
        report.raise_if_errors()
    text = str(err.value)
    assert text.startswith("gt.json: 2 kind(s) of error")
    assert "[annotation.unknown_category] 1x" in text and "category_id=1000" in text
    assert text.endswith("Run `ovdet data check gt.json` for the full list.")


def test_image_modes(tmp_path):
    data = tiny()
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data))
    assert check_coco_dataset(path).stats["images_checked"] == "none"  # no folder: not checked
    assert check_coco_dataset(path, tmp_path, images="none").stats["images_checked"] == "none"
    assert check_coco_dataset(path, tmp_path, images="decode").issues == []
    with pytest.raises(ValueError, match="images='all'"):
        check_coco_dataset(path, tmp_path, images="all")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        check_coco_dataset(path, tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="COCO-format json not found"):
        check_coco_dataset(tmp_path / "none.json")
    assert check_coco_dataset(data).source == "<dict>"


def test_exif_rotated_image_compared_as_detectron2_reads_it(tmp_path):
    """A JPEG stored 40x30 with EXIF orientation 6 is read as 30x40 by detectron2."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg", exif=exif)
    ok = check_coco_dataset(tiny(width=30, height=40), tmp_path, images="decode")
    assert ok.ok
    bad = check_coco_dataset(tiny(width=40, height=30), tmp_path, images="decode")
    assert bad.codes("error") == {"image.size_mismatch"}
    assert "file is 30x40 (WxH) (EXIF-rotated" in bad.errors[0].examples[0]


def test_lvis_style_images_and_annotations(sample):
    """LVIS: no file_name (coco_url), no iscrowd: neither is reported."""
    data = copy.deepcopy(sample)
    for im in data["images"]:
        im["neg_category_ids"], im["not_exhaustive_category_ids"] = [], []
        del im["file_name"]
    data["annotations"] = [a for a in data["annotations"] if not a["iscrowd"]]
    for a in data["annotations"]:
        del a["iscrowd"]
    report = check_coco_dict(data, "lvis.json")
    assert report.ok and report.codes() == {"category.unused", "image.no_annotations"}


def test_check_registered_dataset(sample_dataset, temp_names, tmp_path):
    assert check_registered_dataset(sample_dataset).ok
    with pytest.raises(KeyError, match="not registered"):
        check_registered_dataset("ovdet_test_no_such_dataset")
    temp_names.append("ovdet_test_plain")
    DatasetCatalog.register("ovdet_test_plain", lambda: [])
    with pytest.raises(ValueError, match="no 'json_file' metadata"):
        check_registered_dataset("ovdet_test_plain")
    temp_names.append("ovdet_test_missing_images")
    path = tmp_path / "d.json"
    path.write_text(json.dumps(tiny()))
    register_ov_dataset("ovdet_test_missing_images", path, tmp_path)
    report = check_registered_dataset("ovdet_test_missing_images")
    assert report.codes("error") == {"image.missing_file"}
    assert MetadataCatalog.get("ovdet_test_missing_images").json_file == str(path)
