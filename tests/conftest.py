"""Shared pytest fixtures: small real data, tiny open-vocabulary R-CNNs from the shipped
LazyConfig model files, a fake text encoder, and seeding."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ovdet  # noqa: F401  (applies the detectron2 compatibility layer first)

# isort: split

from detectron2.config import LazyConfig, instantiate
from detectron2.structures import BitMasks, Boxes, Instances

TEST_DATA = Path(__file__).resolve().parent / "assets"  # licences: assets/NOTICE.md


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Small real data kept in the repository: COCO sample images and annotations, CLIP text
    embeddings of the COCO and LVIS classes (see tests/assets/NOTICE.md)."""
    return TEST_DATA


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _restore_logging():
    """A command run in-process may install logging handlers (detectron2's setup_logger,
    basicConfig) on the captured streams of its test; remove them so that later tests do not
    log into a closed stream."""
    import logging

    def loggers():
        named = [
            v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
        ]
        return [logging.getLogger(), *named]

    before = {id(lg): list(lg.handlers) for lg in loggers()}
    yield
    for lg in loggers():
        for handler in lg.handlers[:]:
            if handler not in before.get(id(lg), []):
                lg.removeHandler(handler)


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "common" / "models"
EMBED_DIM = 16


class FakeTextEncoder:
    """Deterministic stand-in for ``ovdet.text.TextEncoder`` (no weights): text -> seeded vector."""

    def __init__(self, dim: int = EMBED_DIM, identity: str = "fake-text-encoder"):
        self._dim = dim
        self._identity = identity
        self.calls = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> str:
        return self._identity

    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        self.calls += 1
        rows = []
        for text in texts:
            g = torch.Generator().manual_seed(zlib.crc32(text.encode()))
            rows.append(torch.randn(self._dim, generator=g))
        return F.normalize(torch.stack(rows), dim=1)


def _tiny_fpn_config(train_embeddings: torch.Tensor):
    """``ov_rcnn_fpn.py`` shrunk to an R18-FPN with 32 channels, BN, few proposals."""
    cfg = LazyConfig.load(str(CONFIG_DIR / "ov_rcnn_fpn.py"))
    m = cfg.model
    bottom_up = m.backbone.bottom_up
    bottom_up.stem.norm = "BN"
    bottom_up.stem.out_channels = 64
    bottom_up.stages.norm = "BN"
    bottom_up.stages.depth = 18
    del bottom_up.stages.stride_in_1x1  # BasicBlock (depth < 50) has no such argument
    bottom_up.freeze_at = 0
    m.backbone.out_channels = 32
    m.proposal_generator.head.in_channels = 32
    m.proposal_generator.pre_nms_topk = (200, 100)
    m.proposal_generator.post_nms_topk = (32, 16)
    m.proposal_generator.batch_size_per_image = 64
    m.roi_heads.batch_size_per_image = 16
    m.roi_heads.box_head.input_shape.channels = 32
    m.roi_heads.box_head.fc_dims = [64, 64]
    pred = m.roi_heads.box_predictor
    pred.input_shape.channels = 64
    pred.classifier.input_shape.channels = 64
    pred.classifier.train_embeddings = train_embeddings
    pred.test_score_thresh = 0.0
    m.roi_heads.mask_head.input_shape.channels = 32
    m.roi_heads.mask_head.conv_dims = [16, 16]
    return cfg


def _tiny_c4_config(train_embeddings: torch.Tensor):
    """``ov_rcnn_c4.py`` shrunk to an R18-C4 backbone + a narrow res5 head, BN."""
    cfg = LazyConfig.load(str(CONFIG_DIR / "ov_rcnn_c4.py"))
    m = cfg.model
    m.backbone.stem.norm = "BN"
    m.backbone.stages.norm = "BN"
    m.backbone.stages.depth = 18
    del m.backbone.stages.stride_in_1x1
    m.backbone.freeze_at = 0
    m.proposal_generator.head.in_channels = 256  # R18 res4
    m.proposal_generator.pre_nms_topk = (200, 100)
    m.proposal_generator.post_nms_topk = (32, 16)
    m.roi_heads.batch_size_per_image = 16
    m.roi_heads.res5.in_channels = 256
    m.roi_heads.res5.bottleneck_channels = 32
    m.roi_heads.res5.out_channels = 64
    m.roi_heads.res5.norm = "BN"
    pred = m.roi_heads.box_predictor
    pred.input_shape.channels = 64
    pred.classifier.input_shape.channels = 64
    pred.classifier.train_embeddings = train_embeddings
    pred.test_score_thresh = 0.0
    m.roi_heads.mask_head.input_shape.channels = 64
    m.roi_heads.mask_head.conv_dims = [16]
    return cfg


def _make_batch(num_classes: int) -> list[dict]:
    """Two 64x64 images: one with 2 instances (boxes + bit masks), one with none."""
    g = torch.Generator().manual_seed(0)
    img0 = torch.rand(3, 64, 64, generator=g) * 255
    img1 = torch.rand(3, 64, 64, generator=g) * 255
    inst0 = Instances((64, 64))
    boxes = torch.tensor([[4.0, 6.0, 40.0, 44.0], [30.0, 20.0, 60.0, 58.0]])
    inst0.gt_boxes = Boxes(boxes)
    inst0.gt_classes = torch.tensor([0, num_classes - 1])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        masks[i, y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = True
    inst0.gt_masks = BitMasks(masks)
    inst1 = Instances((64, 64))
    inst1.gt_boxes = Boxes(torch.zeros(0, 4))
    inst1.gt_classes = torch.zeros(0, dtype=torch.long)
    inst1.gt_masks = BitMasks(torch.zeros(0, 64, 64, dtype=torch.bool))
    return [
        {"image": img0, "instances": inst0, "height": 64, "width": 64},
        {"image": img1, "instances": inst1, "height": 64, "width": 64},
    ]


@pytest.fixture
def fake_encoder() -> FakeTextEncoder:
    return FakeTextEncoder()


@pytest.fixture
def tiny_fpn_config():
    """Factory: train_embeddings (C, D) -> LazyConfig of a tiny OV R-CNN FPN."""
    return _tiny_fpn_config


@pytest.fixture
def tiny_c4_config():
    """Factory: train_embeddings (C, D) -> LazyConfig of a tiny OV R-CNN C4."""
    return _tiny_c4_config


@pytest.fixture
def make_batch():
    """Factory: num_classes -> two training input dicts (one without instances)."""
    return _make_batch


@pytest.fixture
def build_model():
    """Factory: LazyConfig -> instantiated model."""
    return lambda cfg: instantiate(cfg.model)


@pytest.fixture
def model_config_dir() -> Path:
    """configs/common/models of this repository."""
    return CONFIG_DIR
