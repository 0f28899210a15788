"""Grounding R-CNN on OV-LVIS (866 base / 337 rare held out), Mask R-CNN R50-FPN, 4x.

The grounding detector (docs/grounding.md) on ovdet's OV-LVIS setup
(configs/ov_lvis/vild_text_r50_fpn_mask_d2_4x.py: multi-scale 640..800 + flip, repeat-factor
sampling, ImageNet R-50 with FrozenBN, class-agnostic boxes and masks, batch 16, 360k
iterations = detectron2's 4x, up to 300 detections per image), with GLIP's prompt-side recipe:
per batch the names of its classes plus randomly sampled negative base names, at most 85 per
prompt (GLIP's cap) and 256 BERT tokens, shuffled; rare names are never sampled
(``train_negatives`` = base names; the OV-LVIS training jsons hold no rare boxes), so rare
classes are only ever seen at test time. Test: the 1203 names in prompts of at most 40 names
(GLIP's LVIS chunks; 31 chunks), fusion and heads per chunk on one backbone pass, merged.
K=2 fusion layers; AdamW 1e-4.

Text encoder weights a real run needs: ``bert-base-uncased`` as a local Hugging Face folder at
``$OVDET_WEIGHTS/bert-base-uncased`` (see configs/ov_coco/grounding_rcnn_r50_fpn_1x.py), or a
frozen CLIP text tower (``OpenCLIPTokenEncoder``, e.g. ViT-B/32 weights). Plus what
vild_text_r50_fpn_mask_d2_4x.py needs (OV-LVIS jsons, COCO images, R-50.pkl).

Trusted input: this file is Python and is executed when loaded.
"""

import os

from detectron2.config import LazyCall as L

from ovdet.methods.grounding import grounding_model
from ovdet.text import HFTokenEncoder, resolve_vocabulary

from ..common.optim import AdamW as optimizer
from .vild_text_r50_fpn_mask_d2_4x import dataloader, lr_multiplier, train
from .vild_text_r50_fpn_mask_d2_4x import model as _ov_model

_WEIGHTS = os.environ.get("OVDET_WEIGHTS", "weights")

model = grounding_model(
    _ov_model,
    token_encoder=L(HFTokenEncoder)(
        name_or_path=os.path.join(_WEIGHTS, "bert-base-uncased"), max_tokens=256
    ),
    train_vocabulary=L(resolve_vocabulary)(spec="lvis"),
    vocabulary=L(resolve_vocabulary)(spec="lvis"),
    train_negatives=L(resolve_vocabulary)(spec="lvis-base"),
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
    max_test_phrases=40,
)

optimizer.lr = 1e-4
optimizer.weight_decay = 1e-4
train.output_dir = "./output/ov_lvis/grounding_rcnn_r50_fpn_mask_4x"
