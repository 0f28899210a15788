"""Config helpers of HierKD: the global level (a caption distiller on the FPN features) and the
instance level (foreground proposals vs an online teacher)."""

from __future__ import annotations

from detectron2.config import LazyCall as L

from ovdet.modeling.distill import CaptionDistiller

from .instance import (
    HIERKD_INSTANCE_IOU,
    HIERKD_INSTANCE_WEIGHT,
    HierKDInstanceDistillation,
    HierKDInstanceDistiller,
)
from .loss import HierKDGlobalDistillation

__all__ = [
    "HIERKD_GLOBAL_WEIGHT",
    "HIERKD_TEMPERATURE",
    "hierkd_distiller",
    "hierkd_instance_distiller",
]

# Ma et al., CVPR 2022, official config (mengqiDyangge/HierKD, configs/atss/
# distill_ins_and_featmap/atss_r50_fpn_1x_coco_zsd_sfl_fp_max_pt_3_ins_l2_be_not_fix_ns_0.1_iou.py):
# the global (image-caption) loss Symmetric_CLLoss enters with weight 1, the two directions
# summed, and a learnable logit scale initialised to 10 (dist_featuremap_tem = 10.0).
HIERKD_GLOBAL_WEIGHT = 1.0
HIERKD_TEMPERATURE = 0.1


def hierkd_distiller(
    text_encoder,
    *,
    in_channels=256,
    embed_dim=512,
    in_features=None,
    weight=HIERKD_GLOBAL_WEIGHT,
    temperature=HIERKD_TEMPERATURE,
    choose="random",
    reduction="sum",
    scale_param="linear",
    gather=True,
):
    """HierKD global level: backbone features vs a random caption of each image.

    ovdet pools the FPN levels (attention pooling, averaged over levels) instead of HierKD's
    text-conditioned pooling of max-pooled 3x3 patches of a one-stage head
    (docs/methods.md#hierkd). The defaults are the official objective (directions summed, the
    scale itself learned) on the global batch gathered across processes; the OV-Shapes configs
    keep ovdet's earlier form with ``reduction="mean", scale_param="log"``.

    Args:
        text_encoder: an ``ovdet.text.TextEncoder`` or its LazyCall (e.g.
            ``L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=...)``); None when a
            tool fills it (the OV-Shapes benchmark gives the teacher's text tower).
        in_channels: channels of every pooled level (256 for the FPN; levels are averaged).
        embed_dim: D of the text encoder.
        in_features: feature maps to pool (default: all backbone outputs).
        weight, temperature: loss weight and initial (learnable) temperature.
        choose: "random" or "first" caption.
        reduction, scale_param, gather: see
            :class:`~ovdet.methods.hierkd.loss.HierKDGlobalDistillation`.

    Returns:
        a LazyCall of :class:`~ovdet.modeling.distill.CaptionDistiller`.
    """
    return L(CaptionDistiller)(
        objective=L(HierKDGlobalDistillation)(
            in_channels=in_channels,
            embed_dim=embed_dim,
            weight=weight,
            temperature=temperature,
            learnable_temperature=True,
            pooling="attention",
            reduction=reduction,
            scale_param=scale_param,
            gather=gather,
        ),
        text_encoder=text_encoder,
        caption_key="captions",
        choose=choose,
        in_features=in_features,
    )


def hierkd_instance_distiller(
    teacher,
    *,
    weight=HIERKD_INSTANCE_WEIGHT,
    iou_threshold=HIERKD_INSTANCE_IOU,
    max_per_image=128,
):
    """HierKD instance level (official objective): L2 x 0.05 on foreground proposals.

    Args:
        teacher: an online region teacher or its LazyCall, e.g.
            ``L(OnlineRegionTeacher)(teacher=L(build_clip_region_teacher)(
            model=L(open_clip.create_model)(model_name="ViT-B-32", pretrained=CLIP_PATH),
            scales=(1.0,)), input_format="BGR")`` (the official code crops each box once, at
            1.0x, with CLIP ViT-B/32).
        weight: loss weight (official 0.05).
        iou_threshold: minimum IoU of a distilled proposal with a ground-truth box (0.5).
        max_per_image: at most this many proposals per image (None: all).

    Returns:
        a LazyCall of :class:`~ovdet.methods.hierkd.instance.HierKDInstanceDistiller`.
    """
    return L(HierKDInstanceDistiller)(
        objective=L(HierKDInstanceDistillation)(weight=weight),
        teacher=teacher,
        iou_threshold=iou_threshold,
        max_per_image=max_per_image,
    )
