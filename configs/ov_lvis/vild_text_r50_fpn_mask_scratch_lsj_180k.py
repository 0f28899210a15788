"""ViLD-text on OV-LVIS with ViLD's recipe: Mask R-CNN R50-FPN from scratch, SyncBN,
large-scale jitter at 1024, batch 256, 180k iterations.

The official recipe (tensorflow/tpu ``models/official/detection/projects/vild/configs/
vild_resnet.yaml``; every setting beside its source in docs/recipes.md):

- model (``configs/common/models/ov_rcnn_fpn_syncbn.py``): ResNet-50 from random init,
  SyncBN in backbone, FPN and heads, 2-conv RPN head, 4conv+2fc box head, 4-conv mask head;
- data: large-scale jitter (random scale in [0.1, 2.0] of 1024 x 1024, random 1024 crop, flip;
  ``configs/common/data/lsj.py``), no repeat-factor sampling; test at 1024;
- optimisation: batch 256, SGD momentum 0.9, lr 0.32 with 1000 warmup iterations from 0.0032,
  x0.1 at 162k and 171k, 180k iterations; L2 weight decay 4e-5 on kernels only (not on norm
  layers nor biases: ``regularization_variable_regex: .*(kernel|weight):0$``);
- classifier: ViLD-text over all 1203 classes, tau = 0.01 (``temperature: 100``), softmax
  cross-entropy with the rare classes masked (``frcnn_class_loss.mask_rare``: their logits are
  multiplied by 0, :class:`~ovdet.modeling.roi_heads.cls_losses.MaskedSoftmaxClassification`),
  class embeddings from ViLD's 63 prompt templates averaged over the LVIS synonyms;
- test: all 1203 classes, softmax, NMS 0.5, up to 300 detections per image.

Deliberate differences (docs/recipes.md#what-still-differs): no BN after the box head's fc
layers nor in the RPN head (detectron2's heads have none), PyTorch BN momentum/epsilon, a
score threshold of 1e-4 at test (ViLD keeps every score, with the top 1000 per class before
NMS), detectron2's loss normalisations.

Needs: the OV-LVIS jsons (datasets/README.md) and
``$OVDET_DATASETS/metadata/lvis_v1_clip_vild+syn.npy`` (``ovdet embed-text --encoder
open_clip:ViT-B-32:openai --vocab lvis --templates vild --synonyms --out ...``;
configs/common/text_embeddings.py). Published (ViLD-text is ViLD with distillation weight 0):
not in the official README; see docs/recipes.md. Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.data.builtin_meta import lvis_categories
from ovdet.modeling.roi_heads.cls_losses import MaskedSoftmaxClassification
from ovdet.text import get_templates, load_class_embeddings

from ..common.data.lsj import lsj_test, lsj_train
from ..common.data.ov_lvis import dataloader
from ..common.models.ov_rcnn_fpn_syncbn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.text_embeddings import LVIS_VILD_SYNONYMS
from ..common.train import train

classifier = model.roi_heads.box_predictor.classifier
classifier.train_embeddings = L(load_class_embeddings)(path=LVIS_VILD_SYNONYMS, vocabulary="lvis")
classifier.test_embeddings = None  # the same 1203 classes at test time
classifier.temperature = 0.01
model.templates = get_templates("vild")
predictor = model.roi_heads.box_predictor
# ViLD's lvis_rare_masks.npy: 1 for the 866 base (common + frequent) classes, 0 for the rare
predictor.cls_loss = L(MaskedSoftmaxClassification)(
    class_mask=[c["frequency"] != "r" for c in lvis_categories()], fill="zero"
)
predictor.test_score_thresh = 0.0001
predictor.test_nms_thresh = 0.5
predictor.test_topk_per_image = 300

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
train.output_dir = "./output/ov_lvis/vild_text_r50_fpn_mask_scratch_lsj_180k"
