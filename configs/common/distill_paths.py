"""Where the distillation configs expect their inputs (local files only, no downloads).

- CLIP ViT-B/32 weights for the caption (HierKD) text tower: ``$OVDET_WEIGHTS/clip_vit_b32.pt``
  (an open_clip checkpoint file; with a network, ``open_clip.create_model("ViT-B-32",
  pretrained="openai")`` then ``torch.save(model.state_dict(), path)`` makes one).
- Region stores written by ``ovdet extract-regions`` under ``$OVDET_DATASETS/teacher/``::

    ovdet extract-regions --dataset ov_coco_train_base \\
        --config configs/ov_coco/vild_text_r50_fpn_1x.py \\
        --weights output/ov_coco/vild_text_r50_fpn_1x/model_final.pth \\
        --teacher $OVDET_WEIGHTS/clip_vit_b32.pt --teacher-model ViT-B-32 \\
        --top-m 32 --out $OVDET_DATASETS/teacher/ov_coco_train_base_vitb32

  The proposals come from the RPN of the ViLD-text model trained on base boxes (its RPN is
  class-agnostic), as in ViLD; any class-agnostic proposal file works too (``--proposals``).
"""

import os

from ovdet.data import datasets_root

WEIGHTS = os.environ.get("OVDET_WEIGHTS", "weights")
CLIP_VIT_B32 = os.path.join(WEIGHTS, "clip_vit_b32.pt")
OV_COCO_STORE = str(datasets_root() / "teacher" / "ov_coco_train_base_vitb32")
OV_LVIS_STORE = str(datasets_root() / "teacher" / "ov_lvis_train_base_vitb32")
