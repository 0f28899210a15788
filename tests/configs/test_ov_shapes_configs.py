"""configs/ov_shapes/*.py load and instantiate on a tiny generated root (random embeddings)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate

from ovdet.data.synthetic import generate_ov_shapes, load_split
from ovdet.modeling import OVRCNN
from ovdet.text import save_class_embeddings

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "ov_shapes"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ovs_cfg")
    generate_ov_shapes(root, num_train=4, num_val=2, seed=5, progress=False)
    names = [c["name"] for c in load_split(root)["categories"]]
    g = torch.Generator().manual_seed(0)
    save_class_embeddings(
        root / "class_embeddings.pt", torch.randn(len(names), 16, generator=g), names
    )
    return root


@pytest.mark.parametrize(
    "name, train_split, num_train_classes",
    [("vild_text_small.py", "train_base", 27), ("oracle_small.py", "train_all", 36)],
)
def test_config_instantiates(root, name, train_split, num_train_classes):
    cfg = LazyConfig.load(str(CONFIGS / name))
    cfg.ov_shapes.root = str(root)
    cfg.ov_shapes.prefix = "ovs_cfg_test"
    cfg.ov_shapes.image_size = 64
    cfg.train.max_iter = 10

    model = instantiate(cfg.model)
    assert isinstance(model, OVRCNN)
    assert model.vocabulary == [c["name"] for c in load_split(root)["categories"]]
    classifier = model.roi_heads.box_predictor.classifier
    model.train()
    assert classifier.num_classes == num_train_classes
    model.eval()
    assert classifier.num_classes == 36
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 64, 64) * 255, "height": 64, "width": 64}])
    assert out[0]["instances"].image_size == (64, 64)

    assert instantiate(cfg.dataloader.train.dataset.names) == f"ovs_cfg_test_{train_split}"
    test_loader = instantiate(cfg.dataloader.test)
    assert len(test_loader) == 2
    evaluator = instantiate(cfg.dataloader.evaluator)
    assert evaluator is not None
    sched = instantiate(cfg.lr_multiplier)
    assert sched(0.0) == pytest.approx(0.001) and sched(1.0) == pytest.approx(0.0, abs=1e-6)
    assert (
        cfg.train.grad_clip == 1.0 and cfg.dataloader.train.mapper.instance_mask_format == "bitmask"
    )
