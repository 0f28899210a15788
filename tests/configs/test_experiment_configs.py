"""The OV-COCO / OV-LVIS experiment configs load and build their model with the real
CLIP text embeddings in tests/assets (backbone shrunk so the test stays fast)."""

import shutil
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate

from ovdet.modeling import FederatedClassification
from ovdet.modeling.backbone import small_resnet_stages

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture
def datasets_dir(tmp_path, monkeypatch, test_data):
    meta = tmp_path / "metadata"
    meta.mkdir()
    for name in ("coco_clip_a+cname.npy", "lvis_v1_clip_a+cname.npy"):
        shutil.copy(test_data / "clip_text_embeddings" / name, meta / name)
    monkeypatch.setenv("OVDET_DATASETS", str(tmp_path))
    return tmp_path


def shrink(model):
    bottom_up = model.backbone.bottom_up
    bottom_up.stem.out_channels = 16
    bottom_up.stem.norm = "BN"
    bottom_up.stages = L(small_resnet_stages)(
        blocks_per_stage=(1, 1, 1, 1), base_channels=16, stem_channels=16
    )
    bottom_up.freeze_at = 0


def _load(rel):
    cfg = LazyConfig.load(str(CONFIGS / rel))
    shrink(cfg.model)
    return cfg


def test_ov_coco_vild_text(datasets_dir):
    cfg = _load("ov_coco/vild_text_r50_fpn_1x.py")
    assert cfg.dataloader.train.dataset.names == "ov_coco_train_base"
    assert cfg.dataloader.test.dataset.names == "ov_coco_val"
    assert cfg.train.max_iter == 90000 and cfg.dataloader.train.total_batch_size == 16
    model = instantiate(cfg.model)
    predictor = model.roi_heads.box_predictor
    model.train()
    assert predictor.num_active_classes == 48
    model.eval()
    assert predictor.num_active_classes == 65 and model.roi_heads.mask_on is False
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 64, 64) * 255}])[0]["instances"]
    assert (out.pred_classes < 65).all()
    cfg.optimizer.params.model = model
    instantiate(cfg.optimizer)
    instantiate(cfg.lr_multiplier)


def test_ov_lvis_vild_text(datasets_dir):
    cfg = _load("ov_lvis/vild_text_r50_fpn_mask_4x.py")
    assert cfg.dataloader.train.dataset.names == "ov_lvis_train_base"
    assert cfg.train.max_iter == 360000
    model = instantiate(cfg.model)
    predictor = model.roi_heads.box_predictor
    assert predictor.num_active_classes == 1203 and model.roi_heads.mask_on
    assert isinstance(predictor.cls_loss, FederatedClassification)
    assert predictor.cls_loss.num_sampled == 50
    weights = predictor.cls_loss.class_weights
    from ovdet.data.builtin_meta import lvis_categories

    rare = torch.tensor([c["frequency"] == "r" for c in lvis_categories()])
    assert rare.sum() == 337
    assert (weights[rare] == 0).all() and (weights[~rare] > 0).all()
    assert predictor.test_topk_per_image == 300
