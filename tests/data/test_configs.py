"""The LazyConfig dataloader files instantiate and produce batches (tiny overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest
from detectron2.config import LazyConfig, instantiate

from ovdet.evaluation import LVISOVEvaluator, OVCOCOEvaluator

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "common" / "data"


@pytest.mark.parametrize(
    "name, evaluator",
    [("coco_format.py", OVCOCOEvaluator), ("ov_coco.py", OVCOCOEvaluator), ("ov_lvis.py", None)],
)
def test_dataloader_config_instantiates(name, evaluator, sample_dataset):
    cfg = LazyConfig.load(str(CONFIGS / name))
    dl = cfg.dataloader
    if name == "ov_coco.py":
        assert dl.train.dataset.names == "ov_coco_train_base"
        assert dl.test.dataset.names == "ov_coco_val"
    if name == "ov_lvis.py":
        assert dl.train.dataset.names == "ov_lvis_train_base"
        assert dl.evaluator.tasks == ("bbox", "segm")
    dl.train.dataset.names = sample_dataset
    dl.test.dataset.names = sample_dataset
    dl.train.total_batch_size = 2
    dl.train.num_workers = 0
    dl.test.num_workers = 0
    dl.train.mapper.augmentations[0].short_edge_length = (64,)
    dl.train.mapper.augmentations[0].max_size = 1000
    dl.test.mapper.augmentations[0].short_edge_length = 64
    dl.test.mapper.augmentations[0].max_size = 128
    batch = next(iter(instantiate(dl.train)))
    assert len(batch) == 2 and all("instances" in b for b in batch)
    assert min(batch[0]["image"].shape[1:]) == 64
    first = next(iter(instantiate(dl.test)))
    assert len(first) == 1 and "instances" not in first[0]
    ev = instantiate(dl.evaluator)
    assert isinstance(ev, evaluator or LVISOVEvaluator)
