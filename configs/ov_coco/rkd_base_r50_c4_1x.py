"""RKD's base model on OV-COCO (stage 1 of RKD): Faster R-CNN R50-C4, 1x, CLIP text classifier
with the sigmoid loss; trained on base boxes only.

hanoonaR/object-centric-ovd ``configs/coco/Base-OVD-RCNN-C4.yaml`` (detectron2 defaults
otherwise; docs/recipes.md): ImageNet R-50 (MSRA ``R-50.pkl``) with FrozenBN, res2 and the stem
frozen; single-scale training (shortest edge 800, max 1333) + flip; batch 16, SGD lr 0.02,
momentum 0.9, weight decay 1e-4 (not on norm layers), 90k iterations, steps at 60k/80k, 1000
warmup iterations; mixed precision (``FP16: True``; ``train.amp``, CUDA only). RPN test top-k
6000 before NMS, 1000 after. Classifier (``ZeroShotClassifier``, ``USE_SIGMOID_CE: True``):
cos(region, t_c) / 0.02 (``NORM_TEMP: 50``) with RKD's "a photo of a {}" CLIP embeddings,
binary cross-entropy over the training classes without a bias (``USE_BIAS: 0.0``; classes
without training boxes are ignored, ``IGNORE_ZERO_CATS``: here the training vocabulary is the
48 base classes, the same loss). Box regression class-agnostic.

``rkd_r50_c4_1x.py`` (RKD) starts from this model's ``model_final.pth``. Differences: RKD's box
regression is a 2-layer MLP, here one linear layer; ovdet's classifier has a learned background
embedding (unused by the sigmoid loss; RKD's background column is zero). Published
(object-centric-ovd README, ``Base-OVD-RCNN-C4``): AP50 novel 1.7, base 53.2, all 39.6.

Needs ``$OVDET_DATASETS/metadata/coco_clip_a+photo+cname.npy`` (RKD's file, or ``ovdet
embed-text --vocab coco --templates rkd``). Trusted input: executed Python.
"""

import os

from detectron2.config import LazyCall as L
from detectron2.data import transforms as T

from ovdet.modeling.roi_heads.cls_losses import SigmoidClassification
from ovdet.text import get_templates, load_class_embeddings

from ..common.data.ov_coco import dataloader
from ..common.models.ov_rcnn_c4 import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_1x as lr_multiplier
from ..common.text_embeddings import COCO_RKD
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(
    path=COCO_RKD, vocabulary="coco", select="ov-coco-base"
)
classifier.test_embeddings = L(load_class_embeddings)(
    path=COCO_RKD, vocabulary="coco", select="ov-coco"
)
classifier.temperature = 0.02
model.templates = get_templates("rkd")
model.roi_heads.box_predictor.cls_loss = L(SigmoidClassification)(use_bias=False)
# OV-COCO is evaluated with boxes only
model.roi_heads.mask_head = None

dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(800,), sample_style="choice", max_size=1333),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.total_batch_size = 16

optimizer.lr = 0.02
optimizer.weight_decay = 1e-4
train.amp.enabled = True
train.init_checkpoint = os.path.join(os.environ.get("OVDET_WEIGHTS", "weights"), "R-50.pkl")
train.init_partial = "backbone.bottom_up"
train.max_iter = 90000
train.eval_period = 10000
train.output_dir = "./output/ov_coco/rkd_base_r50_c4_1x"
