"""Config helper of HierKD's global level: a caption distiller on the FPN features."""

from __future__ import annotations

from detectron2.config import LazyCall as L

from ovdet.modeling.distill import CaptionDistiller

from .loss import HierKDGlobalDistillation

__all__ = ["HIERKD_GLOBAL_WEIGHT", "HIERKD_TEMPERATURE", "hierkd_distiller"]

# Ma et al., CVPR 2022, official config: the global (image-caption) loss enters with weight 1
# and a learnable logit scale initialised to 10 (dist_featuremap_tem = 10.0, temperature 0.1).
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
):
    """HierKD global level: backbone features vs a random caption of each image.

    ovdet pools the FPN levels (attention pooling, averaged over levels) instead of HierKD's
    max-pooled 3x3 patches of a one-stage head (docs/methods.md#hierkd).

    Args:
        text_encoder: an ``ovdet.text.TextEncoder`` or its LazyCall (e.g.
            ``L(OpenCLIPTextEncoder)(model_name="ViT-B-32", pretrained=...)``); None when a
            tool fills it (the OV-Shapes benchmark gives the teacher's text tower).
        in_channels: channels of every pooled level (256 for the FPN; levels are averaged).
        embed_dim: D of the text encoder.
        in_features: feature maps to pool (default: all backbone outputs).
        weight, temperature: loss weight and initial (learnable) temperature.
        choose: "random" or "first" caption.

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
        ),
        text_encoder=text_encoder,
        caption_key="captions",
        choose=choose,
        in_features=in_features,
    )
