"""Grounding R-CNN on OV-COCO (48 base / 17 novel), Faster R-CNN R50-FPN, 1x.

The grounding detector (ovdet.methods.grounding, docs/grounding.md) on ovdet's OV-COCO setup:
ViLD-text's detectron2-standard data and backbone (configs/ov_coco/vild_text_r50_fpn_d2_1x.py:
multi-scale 640..800 + flip, ImageNet R-50 with FrozenBN, 2fc box head, box-only, batch 16,
90k iterations = detectron2's 1x, steps at 60k/80k), with GLIP's prompt-side recipe: the
detection prompt is the base class names ("person. bicycle. ..."), all 48 fitting one
256-token BERT prompt (at most 85 names, GLIP's cap), shuffled per batch; sigmoid focal loss on
positive maps; K=2 fusion layers (GLIP-T fuses 6 times in its head; 2 keeps R50-FPN at
800x1333 within 1.5x of OVRCNN, see docs/results/grounding_speed.json); AdamW 1e-4 (GLIP's
base learning rate) for the whole detector. Test: all 65 names, box AP50 base / novel.

Text encoder weights a real run needs: ``bert-base-uncased`` (GLIP's and Grounding DINO's)
as a local Hugging Face folder at ``$OVDET_WEIGHTS/bert-base-uncased`` (config.json,
model.safetensors, tokenizer files: ``huggingface-cli download bert-base-uncased --local-dir
...``), read frozen. For the frozen-CLIP variant (YOLO-World's finding), set
``model.token_encoder=L(OpenCLIPTokenEncoder)(...)`` with CLIP ViT-B/32 weights. Plus what
vild_text_r50_fpn_d2_1x.py needs (OV-COCO jsons, ``$OVDET_WEIGHTS/R-50.pkl``).

Trusted input: this file is Python and is executed when loaded.
"""

import os

from detectron2.config import LazyCall as L

from ovdet.methods.grounding import grounding_model
from ovdet.text import HFTokenEncoder, resolve_vocabulary

from ..common.optim import AdamW as optimizer
from .vild_text_r50_fpn_d2_1x import dataloader, lr_multiplier, train
from .vild_text_r50_fpn_d2_1x import model as _ov_model

_WEIGHTS = os.environ.get("OVDET_WEIGHTS", "weights")

model = grounding_model(
    _ov_model,
    token_encoder=L(HFTokenEncoder)(
        name_or_path=os.path.join(_WEIGHTS, "bert-base-uncased"), max_tokens=256
    ),
    train_vocabulary=L(resolve_vocabulary)(spec="ov-coco-base"),
    vocabulary=L(resolve_vocabulary)(spec="ov-coco"),
    text_dim=256,
    embed_dim=256,
    fusion_layers=2,
    # stride 8 and coarser, as GLIP (its head's P3-P7) and Grounding DINO (strides 8-64): P2
    # (3/4 of the positions at 800x1333) reaches the RPN and the ROI pooler unfused
    fusion_in_features=["p3", "p4", "p5", "p6"],
    fusion_embed_dim=128,
    fusion_heads=4,
    fusion_ffn_dim=1024,
    max_train_phrases=85,
)

optimizer.lr = 1e-4
optimizer.weight_decay = 1e-4
train.output_dir = "./output/ov_coco/grounding_rcnn_r50_fpn_1x"
