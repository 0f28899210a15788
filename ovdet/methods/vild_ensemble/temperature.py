"""ViLD-ensemble's image-head temperature from the teacher: tau_image = 1 / logit scale.

ViLD's tau_image = 0.01 is the inverse of OpenAI CLIP's learnt logit scale (100): the image
head mimics the teacher's image embeddings, so its class probabilities are sharpened the way
the teacher's image-text similarities were during its training. For another teacher the
same rule gives another value (the OV-Shapes small CLIP learns a scale of about 20, so
tau_image is about 0.05, not 0.01).
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["set_image_temperature", "teacher_temperature"]


def teacher_temperature(checkpoint: str | os.PathLike) -> float:
    """1 / the logit scale of a small-CLIP teacher checkpoint (``teacher.pt`` + its ``.json``)."""
    from ovdet.teacher.small_clip import load_small_clip

    clip = load_small_clip(checkpoint, device="cpu")
    scale = float(clip.model.logit_scale.detach().exp())
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"teacher {checkpoint}: logit scale {scale} is not a positive number")
    return 1.0 / scale


def set_image_temperature(cfg: Any, teacher_checkpoint: str | os.PathLike) -> float | None:
    """Set ``model.roi_heads.box_predictor.image_temperature`` of a ViLD-ensemble config to
    1 / the teacher's logit scale (rounded to 6 decimals), unless the config sets it.

    Returns:
        The value set; None when the config already had one.
    """
    predictor = cfg.model.roi_heads.box_predictor
    if "image_temperature" in predictor:
        return None
    predictor.image_temperature = round(teacher_temperature(teacher_checkpoint), 6)
    return predictor.image_temperature
