"""HierKD's online region teacher: CLIP ViT-B/32 embeds each distilled box from one 1.0x crop
of the augmented training image, every step (mengqiDyangge/HierKD
``ATSSZSDSFLHead.distill_instance``, ``dist_instance_size: 1.0``).

Use: ``hierkd_instance_distiller(hierkd_online_teacher())`` (``ovdet.methods.hierkd``). The
crops are cut and resized with batched tensor ops on the teacher's device
(``crop_backend="tensor"``): up to 128 boxes per image per step go through CLIP, a GPU job.
Needs ``$OVDET_WEIGHTS/clip_vit_b32.pt`` (configs/common/distill_paths.py).
"""

import open_clip
from detectron2.config import LazyCall as L

from ovdet.teacher.factory import build_clip_region_teacher
from ovdet.teacher.online import OnlineRegionTeacher

from .distill_paths import CLIP_VIT_B32


def hierkd_online_teacher(pretrained: str = CLIP_VIT_B32, input_format: str = "BGR"):
    """LazyCall of an :class:`OnlineRegionTeacher` around CLIP ViT-B/32 with one 1.0x crop."""
    return L(OnlineRegionTeacher)(
        teacher=L(build_clip_region_teacher)(
            model=L(open_clip.create_model)(model_name="ViT-B-32", pretrained=pretrained),
            mode="crop",
            crop_backend="tensor",
            scales=(1.0,),
            model_identity="open_clip:ViT-B-32:" + str(pretrained),
        ),
        input_format=input_format,
    )
