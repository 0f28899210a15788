"""Open-vocabulary Mask R-CNN R50-FPN trained from scratch with SyncBN (ViLD's architecture).

``ov_rcnn_fpn.py`` changed to the model of tensorflow/tpu
``projects/vild/configs/vild_resnet.yaml`` (LVIS), as far as detectron2's modules allow:

- ResNet-50 from random init (``train.init_checkpoint = ""``), nothing frozen, SyncBN in the
  stem and the stages (``batch_norm_activation.use_sync_bn: true``), the stride in the 3x3
  convolution (tensorflow/tpu ``nn_blocks.bottleneck_block``), pixels normalised by the
  ImageNet mean and std (``input_utils.normalize_image``);
- FPN with SyncBN (``fpn.use_batch_norm: true``);
- RPN head with 2 convolutions (``rpn_head.num_convs: 2``), smooth-L1 beta 1/9
  (``rpn_box_loss.huber_loss_delta``);
- box head 4 conv (256) + 2 fc (1024) (``frcnn_head.num_convs: 4``, ``num_fcs: 2``), BN after
  each conv; box smooth-L1 beta 1 (``frcnn_box_loss.huber_loss_delta: 1.0``);
- mask head 4 conv (256) + upsample, BN after each conv (``mrcnn_head``).

The heads use detectron2's ``naiveSyncBN_N`` (synchronised BatchNorm that weighs each process
by its batch size and accepts empty batches: a process may have no foreground region or no
distilled region in a step), backbone and FPN ``SyncBN``. Not available in detectron2's
modules, so different from ViLD: no BN after the box head's fully connected layers and none
in the RPN head's convolutions (ViLD has both), PyTorch's BN momentum and epsilon (0.1, 1e-5)
instead of TensorFlow's 0.997 decay and 1e-4.

Required field: model.roi_heads.box_predictor.classifier.train_embeddings (C_train, D).
"""

from .ov_rcnn_fpn import model

HEAD_NORM = "naiveSyncBN_N"

bottom_up = model.backbone.bottom_up
bottom_up.stem.norm = "SyncBN"
bottom_up.stages.norm = "SyncBN"
bottom_up.stages.stride_in_1x1 = False
bottom_up.freeze_at = 0
model.backbone.norm = "SyncBN"

rpn = model.proposal_generator
rpn.head.conv_dims = [256, 256]
rpn.smooth_l1_beta = 1.0 / 9.0

roi = model.roi_heads
roi.box_head.conv_dims = [256, 256, 256, 256]
roi.box_head.fc_dims = [1024, 1024]
roi.box_head.conv_norm = HEAD_NORM
roi.box_predictor.smooth_l1_beta = 1.0
roi.mask_head.conv_dims = [256, 256, 256, 256, 256]
roi.mask_head.conv_norm = HEAD_NORM

# BatchNorm from scratch: ImageNet mean and std (BGR)
model.pixel_mean = [103.530, 116.280, 123.675]
model.pixel_std = [57.375, 57.120, 58.395]
