"""Shared config parts instantiate; the small CPU model trains a step."""

from pathlib import Path

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

ROOT = Path(__file__).resolve().parents[2] / "configs" / "common"


def test_train_optim_schedules():
    train = LazyConfig.load(str(ROOT / "train.py")).train
    assert train.max_iter == 90000 and train.device == "auto"
    optim_cfg = LazyConfig.load(str(ROOT / "optim.py"))
    model = torch.nn.Linear(2, 2)
    for name in ("SGD", "AdamW"):
        opt_cfg = optim_cfg[name]
        opt_cfg.params.model = model
        assert isinstance(instantiate(opt_cfg), torch.optim.Optimizer)
    sched = LazyConfig.load(str(ROOT / "schedules.py"))
    one_x = instantiate(sched.lr_multiplier_1x)
    assert one_x(0.0) == 0.001  # warmup start
    assert one_x(0.5) == 1.0 and one_x(61000 / 90000) == 0.1 and one_x(0.95) == 0.01


def test_small_model_trains_a_step():
    cfg = LazyConfig.load(str(ROOT / "models" / "ov_rcnn_small_fpn.py"))
    cfg.model.roi_heads.box_predictor.classifier.train_embeddings = torch.nn.functional.normalize(
        torch.randn(4, 16), dim=1
    )
    model = instantiate(cfg.model)
    inst = Instances((96, 96))
    inst.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 50.0, 60.0]]))
    inst.gt_classes = torch.tensor([2])
    from detectron2.structures import BitMasks

    mask = torch.zeros(1, 96, 96, dtype=torch.bool)
    mask[0, 12:60, 10:50] = True
    inst.gt_masks = BitMasks(mask)
    batch = [{"image": torch.rand(3, 96, 96) * 255, "instances": inst}]
    with EventStorage(0):
        losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 96, 96) * 255}])[0]["instances"]
    assert out.has("pred_masks") and (out.pred_classes < 4).all()
