"""Narrow ResNets for CPU-sized experiments (OV-Shapes, tests).

detectron2's ``ResNet.make_default_stages`` fixes the stage widths (64..512 for R18/34); the
OV-Shapes detector trains on two CPU cores in minutes and needs a much narrower network.
"""

from __future__ import annotations

from detectron2.modeling.backbone.resnet import BasicBlock, ResNet


def small_resnet_stages(
    *,
    blocks_per_stage: tuple[int, ...] = (1, 1, 1, 1),
    base_channels: int = 32,
    stem_channels: int = 32,
    norm: str = "BN",
) -> list:
    """Stages of a BasicBlock ResNet whose widths are ``base_channels * 2**i``.

    Args:
        blocks_per_stage: BasicBlocks in res2..res5 ((2, 2, 2, 2) is ResNet-18's layout).
        base_channels: width of res2; res3/res4/res5 double it each time.
        stem_channels: output channels of the stem (the input of res2).
        norm: "BN", "GN", "SyncBN"... ("FrozenBN" only with pretrained weights).

    Returns:
        list of stages (lists of blocks) for ``detectron2.modeling.backbone.ResNet(stages=...)``;
        the output channels of res2..res5 are ``base_channels * (1, 2, 4, 8)``.
    """
    stages = []
    in_channels = stem_channels
    for i, n in enumerate(blocks_per_stage):
        out_channels = base_channels * 2**i
        stride = 1 if i == 0 else 2
        stages.append(
            ResNet.make_stage(
                block_class=BasicBlock,
                num_blocks=n,
                stride_per_block=[stride] + [1] * (n - 1),
                in_channels=in_channels,
                out_channels=out_channels,
                norm=norm,
            )
        )
        in_channels = out_channels
    return stages
