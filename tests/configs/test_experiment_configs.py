"""The OV-COCO / OV-LVIS experiment configs load and build their model with the real
CLIP text embeddings in tests/assets (backbone shrunk so the test stays fast); the settings
that make each recipe (docs/recipes.md) are where the configs say. Every config trains one
step in tests/methods/test_method_configs.py."""

import shutil
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate

from ovdet.data.builtin_meta import lvis_categories
from ovdet.modeling import FederatedClassification
from ovdet.modeling.backbone import small_resnet_stages
from ovdet.modeling.roi_heads.cls_losses import MaskedSoftmaxClassification, SigmoidClassification
from ovdet.text import get_templates

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EMBEDDINGS = LazyConfig.load(str(CONFIGS / "common" / "text_embeddings.py")).EMBEDDING_PROMPTS


@pytest.fixture
def datasets_dir(tmp_path, monkeypatch, test_data):
    meta = tmp_path / "metadata"
    meta.mkdir()
    for name in EMBEDDINGS:
        source = "coco_clip_a+cname.npy" if name.startswith("coco") else "lvis_v1_clip_a+cname.npy"
        shutil.copy(test_data / "clip_text_embeddings" / source, meta / name)
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


def test_ov_coco_vild_text_d2(datasets_dir):
    cfg = _load("ov_coco/vild_text_r50_fpn_d2_1x.py")
    assert cfg.dataloader.train.dataset.names == "ov_coco_train_base"
    assert cfg.dataloader.test.dataset.names == "ov_coco_val"
    assert cfg.train.max_iter == 90000 and cfg.dataloader.train.total_batch_size == 16
    assert list(cfg.model.templates) == get_templates("detic")
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


def test_ov_lvis_vild_text_d2(datasets_dir):
    cfg = _load("ov_lvis/vild_text_r50_fpn_mask_d2_4x.py")
    assert cfg.dataloader.train.dataset.names == "ov_lvis_train_base"
    assert cfg.train.max_iter == 360000
    model = instantiate(cfg.model)
    predictor = model.roi_heads.box_predictor
    assert predictor.num_active_classes == 1203 and model.roi_heads.mask_on
    assert isinstance(predictor.cls_loss, FederatedClassification)
    assert predictor.cls_loss.num_sampled == 50
    assert predictor.classifier.temperature == pytest.approx(0.02)  # Detic / RKD with sigmoid
    weights = predictor.cls_loss.class_weights
    rare = torch.tensor([c["frequency"] == "r" for c in lvis_categories()])
    assert rare.sum() == 337
    assert (weights[rare] == 0).all() and (weights[~rare] > 0).all()
    assert predictor.test_topk_per_image == 300


def test_ov_lvis_vild_recipe_model(datasets_dir):
    """ViLD's recipe: SyncBN everywhere, 4conv+2fc head, masked softmax over 1203 classes."""
    cfg = _load("ov_lvis/vild_r50_fpn_mask_scratch_lsj_180k.py")
    assert cfg.train.init_checkpoint == "" and cfg.train.init_partial is None
    assert list(cfg.model.templates) == get_templates("vild")
    model = instantiate(cfg.model)
    assert isinstance(model.backbone.fpn_lateral2.norm, torch.nn.SyncBatchNorm)
    box_head = model.roi_heads.box_head
    assert [n for n, _ in box_head.named_children()] == [
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "flatten",
        "fc1",
        "fc_relu1",
        "fc2",
        "fc_relu2",
    ]
    assert box_head.conv1.norm is not None and len(model.proposal_generator.rpn_head.conv) == 2
    predictor = model.roi_heads.box_predictor
    loss = predictor.cls_loss
    assert isinstance(loss, MaskedSoftmaxClassification) and loss.fill == "zero"
    assert int(loss.class_mask.sum()) == 866 and predictor.num_active_classes == 1203
    assert predictor.classifier.temperature == pytest.approx(0.01)
    assert model.distillers[0].max_regions == 300
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    named = dict(model.named_parameters())
    # kernels only: no norm parameter, no bias is decayed (ViLD's regex .*(kernel|weight):0$)
    assert id(named["roi_heads.box_head.conv1.weight"]) in decayed
    assert id(named["roi_heads.box_head.fc1.bias"]) not in decayed
    assert id(named["roi_heads.box_head.conv1.norm.weight"]) not in decayed
    schedule = instantiate(cfg.lr_multiplier)
    assert schedule(0.0) == pytest.approx(0.01)  # 0.0032 / 0.32
    assert schedule(1000 / 180000) == pytest.approx(1.0)
    assert schedule(161999 / 180000) == pytest.approx(1.0)
    assert schedule(162000 / 180000) == pytest.approx(0.1)
    assert schedule(171000 / 180000) == pytest.approx(0.01)
    assert schedule(179999 / 180000) == pytest.approx(0.01)  # ViLD's third step is inert


def test_ov_coco_rkd_recipe_is_two_stages(datasets_dir):
    base = LazyConfig.load(str(CONFIGS / "ov_coco/rkd_base_r50_c4_1x.py"))
    rkd = LazyConfig.load(str(CONFIGS / "ov_coco/rkd_r50_c4_1x.py"))
    assert rkd.train.init_checkpoint == f"{base.train.output_dir}/model_final.pth"
    assert rkd.train.init_partial is None
    assert rkd.model.distillers[0].max_regions == 5
    assert rkd.dataloader.train.mapper.store.endswith("ov_coco_train_base_vitb32_rkd5")
    model = instantiate(base.model.roi_heads.box_predictor.cls_loss)
    assert isinstance(model, SigmoidClassification) and not model.use_bias
    assert base.model.roi_heads.box_predictor.classifier.temperature == pytest.approx(0.02)


def test_hierkd_recipe_uses_an_online_teacher(datasets_dir):
    cfg = LazyConfig.load(str(CONFIGS / "ov_coco/hierkd_r50_fpn_ss_1x.py"))
    instance, caption = cfg.model.distillers
    assert instance.objective.weight == 0.05 and instance.iou_threshold == 0.5
    teacher = instance.teacher.teacher
    assert list(teacher.scales) == [1.0] and teacher.model.model_name == "ViT-B-32"
    assert teacher.crop_backend == "tensor" and instance.teacher.input_format == "BGR"
    assert caption.objective.reduction == "sum" and caption.objective.gather
    assert cfg.train.grad_clip == 10.0


@pytest.mark.parametrize("rel", ["ov_lvis/vild_text_r50_fpn_mask_scratch_lsj_180k.py"])
def test_masked_softmax_mask_matches_lvis_rare(rel, datasets_dir):
    mask = LazyConfig.load(str(CONFIGS / rel)).model.roi_heads.box_predictor.cls_loss.class_mask
    assert list(mask) == [c["frequency"] != "r" for c in lvis_categories()]
