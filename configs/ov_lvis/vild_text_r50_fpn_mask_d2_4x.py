"""ViLD-text on OV-LVIS (866 base / 337 rare-as-novel), Mask R-CNN R50-FPN, detectron2's 4x.

Not ViLD's recipe (that is ``vild_text_r50_fpn_mask_scratch_lsj_180k.py``): ovdet's
detectron2-standard variant, with the long-tail choices of later OV-LVIS work. Recipe: batch
16, SGD lr 0.02, weight decay 1e-4, 360k iterations (steps at 240k/320k), multi-scale training
(640..800) + flip, repeat-factor sampling (threshold 0.001), ImageNet-pretrained R-50 with
FrozenBN, 2fc box head without norm, class-agnostic boxes and masks, up to 300 detections per
image at test. docs/recipes.md puts every setting beside ViLD's.

Classifier and loss: the vocabulary during training is all 1203 LVIS classes (contiguous id
i = row i of the embedding file, as the OV-LVIS jsons list all categories) with Detic's
federated sigmoid loss, whose sampling weights are LVIS train image counts ** 0.5 with the
rare classes at 0: rare classes are never sampled as positives or negatives, so the detector
receives no supervision for them, which is the OV-LVIS protocol. The temperature is 0.02 (50),
Detic's and RKD's with the sigmoid loss (ViLD's 0.01 belongs to its softmax). ViLD's masked
softmax is ``cls_loss=L(MaskedSoftmaxClassification)(class_mask=...)`` with temperature 0.01.
Test: all 1203 classes; mask AP, APr (novel), APc, APf.

Needs (datasets/README.md): the OV-LVIS jsons from datasets/prepare_ov_lvis.py, COCO images,
``$OVDET_DATASETS/metadata/lvis_v1_clip_a+cname.npy`` (1203 x 512, prompt "a {}": Detic's
file, or ``ovdet embed-text --vocab lvis --templates detic``) and R-50 weights at
``$OVDET_WEIGHTS/R-50.pkl``.

Trusted input: this file is Python and is executed when loaded.
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
from ..common.schedules import lr_multiplier_4x as lr_multiplier
from ..common.text_embeddings import LVIS_DETIC
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(path=LVIS_DETIC, vocabulary="lvis")
classifier.test_embeddings = None  # same 1203-class vocabulary at test time
classifier.temperature = 0.02
model.templates = get_templates("detic")
predictor = model.roi_heads.box_predictor
predictor.cls_loss = L(FederatedClassification)(
    class_weights=L(federated_class_weights)(
        counts=L(lvis_train_image_counts)(exclude_rare=True), power=0.5
    ),
    num_sampled=50,
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
# ImageNet R-50 (detectron2 model-zoo .pkl): initialises the backbone only; a trained
# detector given as train.init_checkpoint=... fits the whole model and loads whole
train.init_checkpoint = os.path.join(os.environ.get("OVDET_WEIGHTS", "weights"), "R-50.pkl")
train.init_partial = "backbone.bottom_up"
train.max_iter = 360000
train.eval_period = 40000
train.output_dir = "./output/ov_lvis/vild_text_r50_fpn_mask_d2_4x"
