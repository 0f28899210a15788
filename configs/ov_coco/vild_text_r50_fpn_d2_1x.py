"""ViLD-text on OV-COCO (48 base / 17 novel), Faster R-CNN R50-FPN, detectron2's standard 1x.

Not ViLD's recipe (that is ``vild_text_r50_fpn_scratch_lsj_180k.py``): ovdet's
detectron2-standard variant, kept because it trains in a day on 8 GPUs and starts from an
ImageNet backbone. Recipe: batch 16, SGD lr 0.02, weight decay 1e-4 (not on norm layers), 90k
iterations (steps at 60k/80k), multi-scale training (shortest edge 640..800, max 1333) + flip,
ImageNet-pretrained R-50 (detectron2's MSRA ``R-50.pkl``) with FrozenBN, 2fc box head without
norm, box-only (OV-COCO reports box AP50). The classifier is ViLD-text: cos(region, t_c)/0.01
over the 48 base classes + a learned background embedding, softmax CE; class-agnostic boxes.
Test: generalised setting, all 65 classes in the vocabulary; AP50 over base / novel. The
settings and ViLD's own values side by side: docs/recipes.md.

Needs (see datasets/README.md): the OV-COCO jsons from datasets/prepare_ov_coco.py, CLIP text
embeddings ``$OVDET_DATASETS/metadata/coco_clip_a+cname.npy`` (80 x 512, COCO id order,
prompt "a {}": Detic's file, or ``ovdet embed-text --encoder open_clip:ViT-B-32:openai --vocab
coco --templates detic --out ...``; configs/common/text_embeddings.py) and ImageNet R-50
weights at ``$OVDET_WEIGHTS/R-50.pkl`` (detectron2 format; default ``./weights``).

Trusted input: this file is Python and is executed when loaded.
"""

import os

from detectron2.config import LazyCall as L

from ovdet.text import get_templates, load_class_embeddings

from ..common.data.ov_coco import dataloader
from ..common.models.ov_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_1x as lr_multiplier
from ..common.text_embeddings import COCO_DETIC
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(
    path=COCO_DETIC, vocabulary="coco", select="ov-coco-base"
)
classifier.test_embeddings = L(load_class_embeddings)(
    path=COCO_DETIC, vocabulary="coco", select="ov-coco"
)
classifier.temperature = 0.01
model.templates = get_templates("detic")
# OV-COCO is evaluated with boxes only
model.roi_heads.mask_in_features = None
model.roi_heads.mask_pooler = None
model.roi_heads.mask_head = None

dataloader.train.total_batch_size = 16

optimizer.lr = 0.02
# ImageNet R-50 (detectron2 model-zoo .pkl): initialises the backbone only; a trained
# detector given as train.init_checkpoint=... fits the whole model and loads whole
train.init_checkpoint = os.path.join(os.environ.get("OVDET_WEIGHTS", "weights"), "R-50.pkl")
train.init_partial = "backbone.bottom_up"
train.max_iter = 90000
train.eval_period = 10000
train.output_dir = "./output/ov_coco/vild_text_r50_fpn_d2_1x"
