"""HierKD on OV-COCO with HierKD's recipe on ovdet's two-stage detector: R50-FPN, single-scale
800, SGD lr 0.01 with gradient clipping, 12 epochs; instance level against an online CLIP
teacher, global level against captions.

mengqiDyangge/HierKD ``configs/atss/distill_ins_and_featmap/
atss_r50_fpn_1x_coco_zsd_sfl_fp_max_pt_3_ins_l2_be_not_fix_ns_0.1_iou.py`` (with
``_base_/models/atss_r50_fpn_zsd.py``, ``_base_/datasets/coco_zero_shot_detection.py``,
``_base_/schedules/schedule_1x_zsd.py``; every setting beside its source in docs/recipes.md):

- ImageNet R-50 (stem and res2 frozen, ``frozen_stages=1``; BN statistics frozen,
  ``norm_eval=True``), FPN;
- single-scale training: shortest edge 800, max 1333 (``Resize img_scale=(1333, 800)``), flip;
- SGD lr 0.01, momentum 0.9, weight decay 1e-4, gradient norm clipped at 10, 12 epochs with
  x0.1 at epochs 8 and 11, 500 linear warmup iterations from 0.001 (here 12 epochs = 90k
  iterations at batch 16, steps at 60k and 82.5k);
- classifier tau 0.01 (``temperature=100.0``) with "a photo of a {}." CLIP ViT-B/32 embeddings;
- instance level: L2 x 0.05 between the embedding of each proposal with IoU >= 0.5 with a
  ground-truth box and CLIP's embedding of its 1.0x crop, computed online
  (``dist_instance_type='KD_L2Loss'``, ``dist_instance_weight=0.05``; ``hierkd_instance_distiller``
  with ``configs/common/hierkd_teacher.py``);
- global level: symmetric image-caption InfoNCE, directions summed, weight 1, learnable scale
  initialised to 10 (``dist_featuremap_tem=10.0``; ``hierkd_distiller``);
- test: NMS 0.4, no score threshold, 100 detections per image.

Deliberate differences (docs/methods.md#hierkd, docs/recipes.md#what-still-differs): the paper's
detector is one-stage (ATSS with a softmax focal loss, anchors' predicted boxes distilled);
ovdet applies both levels to its two-stage OV R-CNN (softmax cross-entropy; RPN proposals with
IoU >= 0.5 distilled, at most 128 per image); the global level pools the FPN maps once per image
(attention pooling) instead of per caption from max-pooled 3x3 patches, and gathers the batch
across processes (16 images) where the official code contrasts the 8 of one GPU; BN frozen as
FrozenBN (mmdetection's ``norm_eval`` still trains the affine parameters); detectron2's MSRA
``R-50.pkl`` instead of torchvision's weights. The batch size (``samples_per_gpu=8`` x the
number of GPUs) is not stated in the repository: 16 here.

Needs the COCO captions (dataset ``ov_coco_train_base_captions``), CLIP ViT-B/32 weights
(configs/common/distill_paths.py) and ``$OVDET_DATASETS/metadata/coco_clip_photo.npy``
(``ovdet embed-text --vocab coco --templates photo``). Published: see docs/recipes.md. Trusted
input: executed Python.
"""

import os

from detectron2.config import LazyCall as L
from detectron2.data import transforms as T

from ovdet.methods.hierkd import hierkd_distiller, hierkd_instance_distiller
from ovdet.text import OpenCLIPTextEncoder, get_templates, load_class_embeddings

from ..common.data.ov_coco import dataloader
from ..common.distill_paths import CLIP_VIT_B32
from ..common.hierkd_teacher import hierkd_online_teacher
from ..common.models.ov_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.text_embeddings import COCO_PHOTO
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(
    path=COCO_PHOTO, vocabulary="coco", select="ov-coco-base"
)
classifier.test_embeddings = L(load_class_embeddings)(
    path=COCO_PHOTO, vocabulary="coco", select="ov-coco"
)
classifier.temperature = 0.01
model.templates = get_templates("photo")
model.roi_heads.mask_in_features = None
model.roi_heads.mask_pooler = None
model.roi_heads.mask_head = None
predictor = model.roi_heads.box_predictor
predictor.test_score_thresh = 0.0
predictor.test_nms_thresh = 0.4
predictor.test_topk_per_image = 100

caption_encoder = L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=CLIP_VIT_B32)
model.distillers = [
    hierkd_instance_distiller(hierkd_online_teacher(), weight=0.05, iou_threshold=0.5),
    hierkd_distiller(caption_encoder, weight=1.0, temperature=0.1),
]

dataloader.train.dataset.names = "ov_coco_train_base_captions"
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(800,), sample_style="choice", max_size=1333),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.total_batch_size = 16

optimizer.lr = 0.01
optimizer.momentum = 0.9
optimizer.weight_decay = 1e-4
lr_multiplier = step_schedule(90000, [60000, 82500], warmup_iters=500, warmup_factor=0.001)

train.grad_clip = 10.0
train.init_checkpoint = os.path.join(os.environ.get("OVDET_WEIGHTS", "weights"), "R-50.pkl")
train.init_partial = "backbone.bottom_up"
train.max_iter = 90000
train.eval_period = 10000
train.output_dir = "./output/ov_coco/hierkd_r50_fpn_ss_1x"
