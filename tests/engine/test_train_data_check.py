"""Training checks its datasets up front (fast path of `ovdet data check`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from omegaconf import OmegaConf
from PIL import Image

from ovdet.data import register_ov_dataset
from ovdet.data.datasets import COCOFormatError
from ovdet.engine.train import check_training_data


def _dataset(tmp_path, name, *, missing_image=False, negative_box=False):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / "a.png")
    box = [2, 2, -5, 4] if negative_box else [2, 2, 5, 4]
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 20, "width": 30},
            *([{"id": 2, "file_name": "gone.png", "height": 20, "width": 30}] * missing_image),
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": box, "area": 20, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "cat"}],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    if name in DatasetCatalog:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_ov_dataset(name, path, images, novel=[])
    return name


def _cfg(names, **train):
    return OmegaConf.create(
        {"dataloader": {"train": {"dataset": {"names": names}}}, "train": train}
    )


def test_valid_dataset_passes_and_is_checked(tmp_path):
    name = _dataset(tmp_path, "ovdet_test_check_ok")
    assert check_training_data(_cfg(name)) == [name]
    assert check_training_data(_cfg([name])) == [name]


@pytest.mark.parametrize(
    "kind, fragment", [("missing_image", "gone.png"), ("negative_box", "bbox")]
)
def test_dataset_with_errors_is_refused_before_training(tmp_path, kind, fragment):
    name = _dataset(tmp_path, f"ovdet_test_check_{kind}", **{kind: True})
    with pytest.raises(COCOFormatError) as info:
        check_training_data(_cfg(name))
    assert fragment in str(info.value)
    # the check can be switched off on purpose
    assert check_training_data(_cfg(name, check_data=False)) == []


def test_datasets_registered_without_a_json_are_skipped():
    name = "ovdet_test_check_no_json"
    if name not in DatasetCatalog:
        DatasetCatalog.register(name, lambda: [])
    assert check_training_data(_cfg(name)) == []
