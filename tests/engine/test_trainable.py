"""train.trainable (freeze_except): only the named parameters train, frozen BatchNorm keeps its
statistics, and checkpoints load across BatchNorm <-> FrozenBatchNorm2d."""

from __future__ import annotations

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d

from ovdet.engine.checkpoint import load_detectron2_weights
from ovdet.engine.train import freeze_except
from ovdet.utils.errors import InputError


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        self.head = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4))

    def forward(self, x):
        return self.head(self.backbone(x))


def _trained_net() -> _Net:
    torch.manual_seed(0)
    net = _Net().train()
    for _ in range(3):
        net(torch.randn(2, 3, 8, 8) * 3 + 1)  # running statistics away from their defaults
    return net


def test_only_named_parameters_train_and_frozen_bn_keeps_statistics(tmp_path):
    ref = _trained_net()
    torch.save({"model": ref.state_dict()}, tmp_path / "ref.pth")
    net = _Net()
    kept = freeze_except(net, ["head"])
    assert kept == ["head.0.weight", "head.0.bias", "head.1.weight", "head.1.bias"]
    assert isinstance(net.backbone[1], FrozenBatchNorm2d)  # no trainable parameter left
    assert isinstance(net.head[1], torch.nn.BatchNorm2d)  # trains: stays a BatchNorm
    load_detectron2_weights(net, tmp_path / "ref.pth", field="train.init_checkpoint")
    x = torch.randn(2, 3, 8, 8)
    net.train()
    net(x * 5)  # a training-mode step moves no frozen statistic
    torch.testing.assert_close(net.backbone[1].running_mean, ref.backbone[1].running_mean)
    torch.testing.assert_close(net.backbone(x), ref.eval().backbone(x))
    # a checkpoint of the frozen model loads into a fresh one (and back)
    torch.save({"model": net.state_dict()}, tmp_path / "frozen.pth")
    fresh = _Net()
    load_detectron2_weights(fresh, tmp_path / "frozen.pth", field="x")
    torch.testing.assert_close(fresh.eval().backbone(x), ref.backbone(x))


def test_optimizer_sees_only_trainable_parameters():
    from detectron2.solver import get_default_optimizer_params

    net = _Net()
    freeze_except(net, ["head.0"])
    params = [p for group in get_default_optimizer_params(net) for p in group["params"]]
    assert {id(p) for p in params} == {id(net.head[0].weight), id(net.head[0].bias)}


@pytest.mark.parametrize(
    "prefixes, match",
    [
        ([], "non-empty list"),
        ("head", "non-empty list"),
        (["roi_heads.mask_head"], "name no parameter"),
    ],
)
def test_bad_prefixes_are_refused(prefixes, match):
    with pytest.raises(InputError, match=match):
        freeze_except(_Net(), prefixes)
