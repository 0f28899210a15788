"""ViLD-text on OV-COCO with ViLD's recipe: Faster R-CNN R50-FPN from scratch, SyncBN,
large-scale jitter at 1024, batch 256, 180k iterations.

ViLD's official repository (tensorflow/tpu ``models/official/detection/projects/vild``)
publishes LVIS configs only; this config applies its recipe (``configs/vild_resnet.yaml``:
the model of ``configs/common/models/ov_rcnn_fpn_syncbn.py``, large-scale jitter, batch 256,
lr 0.32, 180k iterations, weight decay 4e-5 on kernels only, tau 0.01, ViLD's 63 prompt
templates) to OV-COCO, box-only. Which of these the paper's COCO experiments changed (e.g. the
schedule) is not stated in the sources read (docs/recipes.md says which values are ViLD's LVIS
ones). The classifier is ViLD-text over the 48 base classes + a learned background, softmax
cross-entropy (no class is masked: the training vocabulary is the base classes); test over
the 65 classes, box AP50 over base and novel.

Deliberate differences: as ``ov_lvis/vild_text_r50_fpn_mask_scratch_lsj_180k.py``
(docs/recipes.md#what-still-differs). Needs ``$OVDET_DATASETS/metadata/coco_clip_vild.npy``
(``ovdet embed-text --encoder open_clip:ViT-B-32:openai --vocab coco --templates vild --out
...``). Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.text import get_templates, load_class_embeddings

from ..common.data.lsj import lsj_test, lsj_train
from ..common.data.ov_coco import dataloader
from ..common.models.ov_rcnn_fpn_syncbn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.text_embeddings import COCO_VILD
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(
    path=COCO_VILD, vocabulary="coco", select="ov-coco-base"
)
classifier.test_embeddings = L(load_class_embeddings)(
    path=COCO_VILD, vocabulary="coco", select="ov-coco"
)
classifier.temperature = 0.01
model.templates = get_templates("vild")
# OV-COCO is evaluated with boxes only
model.roi_heads.mask_in_features = None
model.roi_heads.mask_pooler = None
model.roi_heads.mask_head = None
predictor = model.roi_heads.box_predictor
predictor.test_score_thresh = 0.0001
predictor.test_nms_thresh = 0.5
predictor.test_topk_per_image = 100  # COCO's evaluation keeps 100 per image

dataloader.train.mapper.augmentations = lsj_train()
dataloader.test.mapper.augmentations = lsj_test()
dataloader.train.total_batch_size = 256

optimizer.lr = 0.32
optimizer.momentum = 0.9
optimizer.weight_decay = 4e-5
optimizer.params.weight_decay_norm = 0.0
optimizer.params.weight_decay_bias = 0.0
lr_multiplier = step_schedule(
    180000, [162000, 171000], values=[1.0, 0.1, 0.01], warmup_iters=1000, warmup_factor=0.01
)

train.init_checkpoint = ""  # from scratch
train.init_partial = None
train.max_iter = 180000
train.eval_period = 20000
train.output_dir = "./output/ov_coco/vild_text_r50_fpn_scratch_lsj_180k"
