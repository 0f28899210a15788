"""Fixtures for tests/data: the COCO sample registered as a dataset."""

from __future__ import annotations

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovdet.data import register_ov_dataset

SAMPLE_NAME = "ovdet_test_coco_sample"
SAMPLE_NOVEL = ["bus", "skateboard"]


@pytest.fixture(scope="session")
def coco_sample(test_data):
    """(json path, image folder) of the real 6-image COCO sample."""
    root = test_data / "coco_sample"
    return root / "annotations.json", root / "images"


@pytest.fixture(scope="session")
def sample_dataset(coco_sample) -> str:
    """Name of the COCO sample registered with novel = bus, skateboard."""
    json_file, images = coco_sample
    register_ov_dataset(SAMPLE_NAME, json_file, images, novel=SAMPLE_NOVEL)
    return SAMPLE_NAME


@pytest.fixture
def temp_names():
    """Collects dataset names registered by a test and unregisters them afterwards."""
    names: list[str] = []
    yield names
    for n in names:
        if n in DatasetCatalog:
            DatasetCatalog.remove(n)
        if n in MetadataCatalog:
            MetadataCatalog.remove(n)
