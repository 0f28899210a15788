"""HierKD on OV-LVIS: HierKD's objectives on the closest official OV-LVIS recipe, RKD's Mask
R-CNN R50-FPN 1x with the federated sigmoid classifier.

HierKD publishes COCO experiments only (mengqiDyangge/HierKD has no LVIS config). This config
takes the detector, data and schedule of the closest official project, RKD's LVIS base model
(hanoonaR/object-centric-ovd ``configs/lvis/mask_rcnn_R50FPN_CLIP_sigmoid.yaml``, as
``rkd_base_r50_fpn_mask_1x.py``: ImageNet R-50 with FrozenBN, 1x at batch 16, multi-scale
640..800, repeat-factor sampling, federated sigmoid loss at tau 0.02), both levels of HierKD
with their official weights (instance: L2 x 0.05 against an online CLIP ViT-B/32 teacher on
proposals with IoU >= 0.5; global: caption InfoNCE, weight 1, learnable scale from 10; as
``ov_coco/hierkd_r50_fpn_ss_1x.py``) and HierKD's prompt "a photo of a {}.". LVIS images are
COCO images: the captions are COCO's (dataset ``ov_lvis_train_base_captions``). Published:
none. Needs ``$OVDET_DATASETS/metadata/lvis_v1_clip_photo.npy`` (``ovdet embed-text --vocab lvis
--templates photo``) and CLIP ViT-B/32 weights. Trusted input: executed Python.
"""

from detectron2.config import LazyCall as L

from ovdet.methods.hierkd import hierkd_distiller, hierkd_instance_distiller
from ovdet.text import OpenCLIPTextEncoder, get_templates

from ..common.distill_paths import CLIP_VIT_B32
from ..common.hierkd_teacher import hierkd_online_teacher
from ..common.text_embeddings import LVIS_PHOTO
from .rkd_base_r50_fpn_mask_1x import dataloader, lr_multiplier, model, optimizer, train

model.roi_heads.box_predictor.classifier.train_embeddings.path = LVIS_PHOTO
model.templates = get_templates("photo")
caption_encoder = L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=CLIP_VIT_B32)
model.distillers = [
    hierkd_instance_distiller(hierkd_online_teacher(), weight=0.05, iou_threshold=0.5),
    hierkd_distiller(caption_encoder, weight=1.0, temperature=0.1),
]
dataloader.train.dataset.names = "ov_lvis_train_base_captions"
train.output_dir = "./output/ov_lvis/hierkd_r50_fpn_mask_1x"
