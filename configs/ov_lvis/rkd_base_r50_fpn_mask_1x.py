"""RKD's base model on OV-LVIS (stage 1 of RKD): Mask R-CNN R50-FPN, 1x, CLIP text classifier
with Detic's federated sigmoid loss; trained on base boxes only.

hanoonaR/object-centric-ovd ``configs/lvis/mask_rcnn_R50FPN_CLIP_sigmoid.yaml`` (docs/recipes.md):
ImageNet R-50 with FrozenBN (detectron2 defaults), FPN, 2fc box head, 4-conv class-agnostic mask
head; multi-scale training (shortest edge 640..800, max 1333) + flip, repeat-factor sampling
(0.001); batch 16, SGD lr 0.02, weight decay 1e-4, 90k iterations, steps at 60k/80k, 1000
warmup iterations from 0.001; classifier cos(region, t_c) / 0.02 (``NORM_TEMP: 50``) with RKD's
"a photo of a {}" embeddings over all 1203 classes, federated sigmoid loss (50 classes per
iteration, weights image_count ** 0.5 of ``lvis_v1_train_norare_cat_info.json``: rare classes
never sampled) with a learned bias initialised at -4.6 (``USE_BIAS: -4.6``; here -log(99) =
-4.595); test score threshold 1e-4, 300 detections per image.

``rkd_r50_fpn_mask_1x.py`` (RKD) starts from this model. Differences: box regression by one
linear layer (RKD: a 2-layer MLP). Published (object-centric-ovd README,
``mask_rcnn_R50FPN_CLIP_sigmoid``): mask APr 12.2, APc 19.4, APf 26.4, AP 20.9.

Needs ``$OVDET_DATASETS/metadata/lvis_v1_clip_a+photo+cname.npy`` (RKD's file, or ``ovdet
embed-text --vocab lvis --templates rkd``). Trusted input: executed Python.
"""

import os

from detectron2.config import LazyCall as L
from detectron2.data.samplers import RepeatFactorTrainingSampler

from ovdet.data.builtin_meta import lvis_train_image_counts
from ovdet.modeling import FederatedClassification, federated_class_weights
from ovdet.text import get_templates, load_class_embeddings

from ..common.data.ov_lvis import dataloader
from ..common.models.ov_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_1x as lr_multiplier
from ..common.text_embeddings import LVIS_RKD
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(path=LVIS_RKD, vocabulary="lvis")
classifier.test_embeddings = None  # the same 1203 classes at test time
classifier.temperature = 0.02
model.templates = get_templates("rkd")
predictor = model.roi_heads.box_predictor
predictor.cls_loss = L(FederatedClassification)(
    class_weights=L(federated_class_weights)(
        counts=L(lvis_train_image_counts)(exclude_rare=True), power=0.5
    ),
    num_sampled=50,
    prior_prob=0.01,
)
predictor.test_score_thresh = 0.0001
predictor.test_topk_per_image = 300

dataloader.train.sampler = L(RepeatFactorTrainingSampler)(
    repeat_factors=L(RepeatFactorTrainingSampler.repeat_factors_from_category_frequency)(
        dataset_dicts="${dataloader.train.dataset}", repeat_thresh=0.001
    )
)
dataloader.train.total_batch_size = 16

optimizer.lr = 0.02
optimizer.weight_decay = 1e-4
train.init_checkpoint = os.path.join(os.environ.get("OVDET_WEIGHTS", "weights"), "R-50.pkl")
train.init_partial = "backbone.bottom_up"
train.max_iter = 90000
train.eval_period = 10000
train.output_dir = "./output/ov_lvis/rkd_base_r50_fpn_mask_1x"
