"""ViLD-text on OV-LVIS (866 base / 337 rare-as-novel), Mask R-CNN R50-FPN, 4x schedule.

Recipe: batch 16, SGD lr 0.02, 360k iterations (steps at 240k/320k), multi-scale training,
repeat-factor sampling (threshold 0.001), ImageNet-pretrained R-50 with FrozenBN,
class-agnostic boxes and masks, up to 300 detections per image at test.

Classifier and loss: the vocabulary during training is all 1203 LVIS classes (contiguous id
i = row i of the embedding file, as the OV-LVIS jsons list all categories) with Detic's
federated sigmoid loss, whose sampling weights are LVIS train image counts ** 0.5 with the
rare classes at 0: rare classes are never sampled as positives or negatives, so the detector
receives no supervision for them, which is the OV-LVIS protocol. (ViLD itself trains a softmax
over the 866 base classes; the federated loss is the long-tail choice of later OV-LVIS work
and is selectable back with ``cls_loss=L(SoftmaxClassification)()`` and base-only train
embeddings.)
Test: all 1203 classes; mask AP, APr (novel), APc, APf.

Needs (datasets/README.md): the OV-LVIS jsons from datasets/prepare_ov_lvis.py, COCO images,
``$OVDET_DATASETS/metadata/lvis_v1_clip_a+cname.npy`` (1203 x 512) and R-50 weights at
``$OVDET_WEIGHTS/R-50.pkl``.

Trusted input: this file is Python and is executed when loaded.
"""

import os

from detectron2.config import LazyCall as L
from detectron2.data.samplers import RepeatFactorTrainingSampler

from ovdet.data import datasets_root
from ovdet.data.builtin_meta import lvis_train_image_counts
from ovdet.modeling import FederatedClassification, federated_class_weights
from ovdet.text import load_class_embeddings

from ..common.data.ov_lvis import dataloader
from ..common.models.ov_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_4x as lr_multiplier
from ..common.train import train

_EMBEDDINGS = str(datasets_root() / "metadata" / "lvis_v1_clip_a+cname.npy")

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(path=_EMBEDDINGS, vocabulary="lvis")
classifier.test_embeddings = None  # same 1203-class vocabulary at test time
classifier.temperature = 0.01
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
train.output_dir = "./output/ov_lvis/vild_text_r50_fpn_mask_4x"
