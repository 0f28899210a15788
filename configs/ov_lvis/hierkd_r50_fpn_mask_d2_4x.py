"""HierKD on OV-LVIS, Mask R-CNN R50-FPN, detectron2's 4x (ovdet's variant): instance level
ViLD-image's L1 on the stored top-32 proposals, global level the official caption InfoNCE.

HierKD publishes no LVIS recipe; ``hierkd_r50_fpn_mask_1x.py`` is the closest official one
(docs/recipes.md). The global level pools the FPN maps into an image embedding contrasted with
the CLIP text embedding of one COCO caption per image over the batch (docs/methods.md#hierkd;
LVIS images are COCO images). Needs the COCO captions (dataset
``ov_lvis_train_base_captions``) and CLIP ViT-B/32 weights for the text tower
(configs/common/distill_paths.py). Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.methods.hierkd import hierkd_distiller
from ovdet.methods.vild import vild_distiller
from ovdet.text import OpenCLIPTextEncoder

from ..common.distill_paths import CLIP_VIT_B32
from .vild_r50_fpn_mask_d2_4x import dataloader, lr_multiplier, model, optimizer, train

caption_encoder = L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=CLIP_VIT_B32)
model.distillers = [vild_distiller(), hierkd_distiller(caption_encoder)]
dataloader.train.dataset.names = "ov_lvis_train_base_captions"
train.output_dir = "./output/ov_lvis/hierkd_r50_fpn_mask_d2_4x"
