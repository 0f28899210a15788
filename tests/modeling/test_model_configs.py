"""configs/common/models/*.py instantiate (tiny overrides) and run; required fields are enforced."""

from __future__ import annotations

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes
from detectron2.utils.events import EventStorage

from ovdet.modeling import OVRCNN, OVRes5ROIHeads, OVStandardROIHeads


def _image() -> list[dict]:
    g = torch.Generator().manual_seed(5)
    return [{"image": torch.rand(3, 64, 64, generator=g) * 255, "height": 64, "width": 64}]


@pytest.mark.parametrize("name", ["ov_rcnn_fpn.py", "ov_rcnn_c4.py"])
def test_defaults_are_pretrained_r50_with_required_train_embeddings(name, model_config_dir):
    cfg = LazyConfig.load(str(model_config_dir / name))
    backbone = cfg.model.backbone.get("bottom_up", cfg.model.backbone)
    assert backbone.stem.norm == "FrozenBN" and backbone.stages.depth == 50
    assert cfg.model.roi_heads.mask_head.num_classes == 1
    assert cfg.model.roi_heads.box_predictor.classifier.temperature == 0.01
    with pytest.raises(Exception, match="train_embeddings"):
        instantiate(cfg.model)


def test_fpn_config_eval_forward(tiny_fpn_config):
    cfg = tiny_fpn_config(torch.randn(3, 16))
    model = instantiate(cfg.model).eval()
    assert isinstance(model, OVRCNN) and isinstance(model.roi_heads, OVStandardROIHeads)
    with torch.no_grad():
        inst = model(_image())[0]["instances"]
    assert inst.has("pred_masks") and bool((inst.pred_classes < 3).all())


def test_c4_config_train_step_eval_forward_and_region_embeddings(tiny_c4_config, make_batch):
    torch.manual_seed(0)
    model = instantiate(tiny_c4_config(torch.randn(4, 16)).model)
    assert isinstance(model.roi_heads, OVRes5ROIHeads)
    with EventStorage():
        losses = model(make_batch(4))
    assert {"loss_cls", "loss_box_reg", "loss_mask"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    model.set_vocabulary(torch.randn(11, 16))
    with torch.no_grad():
        inst = model(_image())[0]["instances"]
        assert inst.has("pred_masks") and bool((inst.pred_classes < 11).all())
        features = model.backbone(model.preprocess_image(_image()).tensor)
        emb = model.roi_heads.region_embeddings(
            features, [Boxes(torch.tensor([[2.0, 2.0, 40.0, 50.0]]))]
        )
    assert emb.shape == (1, 16)
