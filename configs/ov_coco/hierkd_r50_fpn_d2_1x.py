"""HierKD on OV-COCO, R50-FPN, detectron2's standard 1x (ovdet's variant).

HierKD's recipe is ``hierkd_r50_fpn_ss_1x.py`` (docs/recipes.md). This variant keeps the
instance level of ovdet's first HierKD: ViLD-image's L1 (weight 0.5) on the stored top-32
proposals (no online teacher: a CLIP forward per region per step is a GPU job), with the
official global level: the FPN maps pooled into an image embedding contrasted with the CLIP
text embedding of one COCO caption per image over the global batch (docs/methods.md#hierkd).
Needs the COCO captions (dataset ``ov_coco_train_base_captions``) and CLIP ViT-B/32 weights for
the text tower (configs/common/distill_paths.py). Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.vild import vild_distiller
from ovdet.text import OpenCLIPTextEncoder

from ..common.distill_paths import CLIP_VIT_B32
from .vild_r50_fpn_d2_1x import dataloader, lr_multiplier, model, optimizer, train

caption_encoder = L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=CLIP_VIT_B32)
model.distillers = [vild_distiller(), hierkd_distiller(caption_encoder)]
dataloader.train.dataset.names = "ov_coco_train_base_captions"
train.output_dir = "./output/ov_coco/hierkd_r50_fpn_d2_1x"
