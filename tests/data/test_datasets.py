"""register_ov_dataset and the built-in OV-COCO / OV-LVIS registrations."""

from __future__ import annotations

import json

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovdet.data import COCOFormatError, register_ov_dataset
from ovdet.data.builtin_meta import OV_COCO_NOVEL_NAMES


def test_register_sample_loads_and_splits(sample_dataset):
    dicts = DatasetCatalog.get(sample_dataset)
    assert len(dicts) == 6
    assert sum(len(d["annotations"]) for d in dicts) == 36
    meta = MetadataCatalog.get(sample_dataset)
    assert len(meta.thing_classes) == 80 and meta.thing_classes[0] == "person"
    assert meta.novel_classes == ["bus", "skateboard"]
    assert len(meta.base_classes) == 78 and "bus" not in meta.base_classes
    assert meta.thing_dataset_id_to_contiguous_id[90] == 79
    assert meta.evaluator_type == "ov_coco"
    # contiguous ids; the image without annotations is kept
    assert all(0 <= a["category_id"] < 80 for d in dicts for a in d["annotations"])
    assert any(len(d["annotations"]) == 0 for d in dicts)
    assert sum(a.get("iscrowd", 0) for d in dicts for a in d["annotations"]) == 1


def test_metadata_resolves_lazily_before_loading(coco_sample, temp_names):
    json_file, images = coco_sample
    temp_names.append("ovdet_test_lazy")
    register_ov_dataset("ovdet_test_lazy", json_file, images, base=["person", "dog"])
    meta = MetadataCatalog.get("ovdet_test_lazy")
    assert meta.base_classes == ["person", "dog"]
    assert len(meta.novel_classes) == 78  # novel defaults to the non-base classes


def test_reregistration(coco_sample, sample_dataset):
    json_file, images = coco_sample
    register_ov_dataset(sample_dataset, json_file, images, novel=["bus", "skateboard"])  # no-op
    with pytest.raises(ValueError, match="already registered.*novel"):
        register_ov_dataset(sample_dataset, json_file, images, novel=["bus"])


def test_unknown_novel_name(coco_sample, temp_names):
    json_file, images = coco_sample
    temp_names.append("ovdet_test_unknown")
    register_ov_dataset("ovdet_test_unknown", json_file, images, novel=["dog", "unicorn"])
    with pytest.raises(ValueError, match=r"annotations\.json.*unicorn"):
        DatasetCatalog.get("ovdet_test_unknown")
    # with declared classes the error comes at registration
    temp_names.append("ovdet_test_unknown2")
    with pytest.raises(ValueError, match="'persons'.*close.*'person'"):
        register_ov_dataset(
            "ovdet_test_unknown2",
            json_file,
            images,
            novel=["persons"],
            extra_metadata={"thing_classes": ["person", "tv"]},
        )


def _write(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "breakage, field",
    [
        (lambda d: d.pop("categories"), "categories"),
        (lambda d: d.pop("annotations"), "annotations"),
        (lambda d: d.pop("images"), "images"),
        (lambda d: d["annotations"][3].pop("bbox"), "bbox"),
        (lambda d: d["annotations"][5].pop("category_id"), "category_id"),
    ],
)
def test_missing_field_named(coco_sample, tmp_path, temp_names, breakage, field):
    data = json.loads(coco_sample[0].read_text())
    breakage(data)
    path = _write(tmp_path, data)
    temp_names.append("ovdet_test_broken")
    register_ov_dataset("ovdet_test_broken", path, coco_sample[1])
    with pytest.raises(COCOFormatError) as err:
        DatasetCatalog.get("ovdet_test_broken")
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_missing_json(tmp_path, temp_names):
    temp_names.append("ovdet_test_nojson")
    register_ov_dataset("ovdet_test_nojson", tmp_path / "none.json", tmp_path)  # cheap: no read
    with pytest.raises(FileNotFoundError, match="none.json.*README"):
        DatasetCatalog.get("ovdet_test_nojson")


def test_declared_categories_mismatch(coco_sample, temp_names):
    json_file, images = coco_sample
    temp_names.append("ovdet_test_declared")
    register_ov_dataset(
        "ovdet_test_declared", json_file, images, extra_metadata={"thing_classes": ["person"]}
    )
    with pytest.raises(ValueError, match="categories do not match"):
        DatasetCatalog.get("ovdet_test_declared")


def test_bad_arguments(coco_sample):
    json_file, images = coco_sample
    with pytest.raises(ValueError, match="list of names"):
        register_ov_dataset("ovdet_test_x", json_file, images, novel="dog")
    with pytest.raises(ValueError, match="both base and novel"):
        register_ov_dataset("ovdet_test_y", json_file, images, novel=["dog"], base=["dog"])
        _ = MetadataCatalog.get("ovdet_test_y").base_classes
    DatasetCatalog.remove("ovdet_test_y")
    MetadataCatalog.remove("ovdet_test_y")
    with pytest.raises(ValueError, match="may not set"):
        register_ov_dataset("ovdet_test_z", json_file, images, extra_metadata={"json_file": 1})


def test_builtin_names_registered_without_reading():
    names = DatasetCatalog.list()
    for n in ("ov_coco_train_base", "ov_coco_train_all", "ov_coco_val"):
        assert n in names
    val = MetadataCatalog.get("ov_coco_val")
    assert len(val.thing_classes) == 65 and val.novel_classes == [
        c for c in val.thing_classes if c in OV_COCO_NOVEL_NAMES
    ]
    assert len(val.novel_classes) == 17 and len(val.base_classes) == 48
    base = MetadataCatalog.get("ov_coco_train_base")
    assert len(base.thing_classes) == 48 and base.novel_classes == []
    lvis = MetadataCatalog.get("ov_lvis_val")
    assert len(lvis.thing_classes) == 1203
    assert (len(lvis.base_classes), len(lvis.novel_classes)) == (866, 337)
    assert lvis.evaluator_type == "ov_lvis" and lvis.readable_thing_classes[0] == "aerosol can"
    train = MetadataCatalog.get("ov_lvis_train_base")
    rare = [i for i, f in enumerate(train.class_frequency) if f == "r"]
    assert len(rare) == 337 and all(train.class_image_count[i] == 0 for i in rare)
    assert train.json_file.endswith("lvis/ov_lvis/lvis_v1_train_base.json")


def test_json_syntax_error_names_the_line(coco_sample, tmp_path, temp_names):
    text = json.dumps(json.loads(coco_sample[0].read_text()), indent=1)
    text = text.replace('"name": "person"\n', '"name": "person",\n', 1)  # a trailing comma
    line = text[: text.index('"name": "person",\n')].count("\n") + 1
    path = tmp_path / "edited.json"
    path.write_text(text)
    temp_names.append("ovdet_test_trailing_comma")
    register_ov_dataset("ovdet_test_trailing_comma", path, coco_sample[1])
    with pytest.raises(
        COCOFormatError, match=rf"line {line + 1}, column \d+.*trailing comma at line {line}"
    ):
        DatasetCatalog.get("ovdet_test_trailing_comma")


def test_roboflow_category_zero_accepted(tmp_path, temp_names):
    """Roboflow: an unused superclass with id 0, image and annotation ids from 0."""
    data = {
        "images": [
            {
                "id": 0,
                "file_name": "a_jpg.rf.1.jpg",
                "height": 416,
                "width": 416,
                "license": 1,
                "date_captured": "2020-11-18T16:09:34+00:00",
            }
        ],
        "annotations": [
            {
                "id": 0,
                "image_id": 0,
                "category_id": 2,
                "bbox": [10, 10, 40, 30],
                "area": 1200,
                "segmentation": [],
                "iscrowd": 0,
            }
        ],
        "categories": [
            {"id": 0, "name": "cells", "supercategory": "none"},
            {"id": 1, "name": "Platelets", "supercategory": "cells"},
            {"id": 2, "name": "RBC", "supercategory": "cells"},
        ],
    }
    path = _write(tmp_path, data, "rf.json")
    temp_names.append("ovdet_test_roboflow")
    register_ov_dataset("ovdet_test_roboflow", path, tmp_path, novel=["Platelets"])
    dicts = DatasetCatalog.get("ovdet_test_roboflow")
    assert [a["category_id"] for a in dicts[0]["annotations"]] == [2]  # contiguous == id here
    meta = MetadataCatalog.get("ovdet_test_roboflow")
    assert meta.thing_classes == ["cells", "Platelets", "RBC"]
    assert meta.base_classes == ["cells", "RBC"] and meta.novel_classes == ["Platelets"]


@pytest.mark.parametrize(
    "breakage, culprit",
    [
        (
            lambda d: d["annotations"][3].update(bbox=[1, 2, -3, 4]),
            r"annotation \d+ of image id \d+ .*bbox=\[1, 2, -3, 4\]",
        ),
        (
            lambda d: d["annotations"][3].update(bbox=[1, 2, float("nan"), 4]),
            r"bbox=\[1, 2, nan, 4\]",
        ),
        (
            lambda d: d["annotations"][4].update(segmentation=[1.0, 2.0, 30.0, 4.0, 5.0, 60.0]),
            r"segmentation\.flat_polygon.*annotations\[4\]",
        ),
        (
            lambda d: d["annotations"][6].update(category_id=1000),
            r"annotation\.unknown_category.*annotations\[6\]",
        ),
        (
            lambda d: d["annotations"][7].update(category_id="1"),
            r"annotation\.category_id_type.*annotations\[7\].*the string",
        ),
    ],
)
def test_invalid_variants_clear_error_when_loaded(
    coco_sample, tmp_path, temp_names, breakage, culprit
):
    data = json.loads(coco_sample[0].read_text())
    breakage(data)
    path = _write(tmp_path, data)
    temp_names.append("ovdet_test_invalid")
    register_ov_dataset("ovdet_test_invalid", path, coco_sample[1])
    with pytest.raises(COCOFormatError, match=culprit) as err:
        DatasetCatalog.get("ovdet_test_invalid")
    assert str(path) in str(err.value)
