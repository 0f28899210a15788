"""A narrow open-vocabulary Mask R-CNN (small BasicBlock ResNet + FPN) for CPU experiments.

Same architecture family as ``ov_rcnn_fpn.py`` (ViLD-text classifier, class-agnostic boxes
and masks) scaled down to train on two CPU cores in minutes on ~256 px images: res2..res5
widths 32/64/128/256, FPN 64 channels, 2x256 box head, few proposals, BatchNorm (random
init: FrozenBN would not normalise anything without pretrained statistics).

Required field: model.roi_heads.box_predictor.classifier.train_embeddings (C_train, D).
"""

from detectron2.config import LazyCall as L

from ovdet.modeling.backbone import small_resnet_stages

from .ov_rcnn_fpn import model

_FPN = 64
_BOX_FC = 256

bottom_up = model.backbone.bottom_up
bottom_up.stem.out_channels = 32
bottom_up.stem.norm = "BN"
bottom_up.stages = L(small_resnet_stages)(
    blocks_per_stage=(1, 1, 1, 1), base_channels=32, stem_channels=32, norm="BN"
)
bottom_up.freeze_at = 0
model.backbone.out_channels = _FPN

rpn = model.proposal_generator
rpn.head.in_channels = _FPN
rpn.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
rpn.batch_size_per_image = 128
rpn.pre_nms_topk = (1000, 500)
rpn.post_nms_topk = (256, 128)

roi = model.roi_heads
roi.batch_size_per_image = 128
roi.box_head.input_shape.channels = _FPN
roi.box_head.fc_dims = [_BOX_FC, _BOX_FC]
roi.box_predictor.input_shape.channels = _BOX_FC
roi.box_predictor.classifier.input_shape.channels = _BOX_FC
roi.mask_head.input_shape.channels = _FPN
roi.mask_head.conv_dims = [_FPN, _FPN]

# BatchNorm from scratch: normalise pixels to unit variance too (ImageNet statistics, BGR)
model.pixel_mean = [103.530, 116.280, 123.675]
model.pixel_std = [57.375, 57.120, 58.395]
