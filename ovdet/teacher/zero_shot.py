"""Zero-shot classification with a CLIP model (docs/methods.md#clip-basics): image embeddings
and top-1 accuracy split into base and novel classes.

``t_c = normalise(mean_k normalise(TextEnc(template_k(c))))`` (the class embeddings, built by
:func:`ovdet.text.build_class_embeddings`); an image x is assigned
``argmax_c cos(ImgEnc(x), t_c)`` over the whole vocabulary (generalised setting: base and novel
classes compete).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

import torch
from torch import nn

__all__ = ["encode_images", "zero_shot_accuracy"]


@torch.no_grad()
def encode_images(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    device: Union[str, torch.device] = "cpu",
) -> torch.Tensor:
    """Encode preprocessed image batches.

    Args:
        model: open_clip model (``encode_image``); used in eval mode, mode restored after.
        batches: iterable of (B, 3, S, S) preprocessed image tensors.
        device: where to run the image tower.

    Returns:
        (N, D) float32 L2-normalised embeddings on CPU (N = total images).
    """
    was_training = model.training
    model.eval()
    try:
        out = [model.encode_image(b.to(device), normalize=True).float().cpu() for b in batches]
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("encode_images got no image batches")
    return torch.cat(out)


def zero_shot_accuracy(
    image_emb: torch.Tensor,
    labels: torch.Tensor,
    class_emb: torch.Tensor,
    classnames: Sequence[str],
    *,
    novel: Optional[Iterable[str]] = None,
) -> dict[str, Any]:
    """Top-1 zero-shot accuracy overall, on base classes and on novel classes.

    Args:
        image_emb: (N, D) L2-normalised image embeddings.
        labels: (N,) ground-truth class indices into ``classnames``.
        class_emb: (C, D) L2-normalised class embeddings (row c = ``classnames[c]``).
        classnames: the C names.
        novel: names of the novel classes (the others are base); unknown names are an error.

    Returns:
        dict with ``top1_all``, ``top1_base``, ``top1_novel`` (fractions in [0, 1]; None when
        no sample of that group), ``num_all``, ``num_base``, ``num_novel``, ``num_classes``,
        ``chance`` (1 / C) and ``per_class`` ({name: accuracy or None}).
    """
    if image_emb.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{image_emb.shape[0]} image embeddings but {labels.shape[0]} labels; they must match"
        )
    if class_emb.shape[0] != len(classnames):
        raise ValueError(f"{class_emb.shape[0]} class embeddings for {len(classnames)} names")
    novel_set = set(novel or ())
    unknown = sorted(novel_set - set(classnames))
    if unknown:
        raise ValueError(f"novel classes {unknown} are not among the evaluated classes")
    pred = (image_emb.float() @ class_emb.float().t()).argmax(dim=1)
    correct = pred == labels
    is_novel = torch.tensor([classnames[i] in novel_set for i in labels.tolist()], dtype=torch.bool)

    def _acc(mask: torch.Tensor) -> Optional[float]:
        n = int(mask.sum())
        return float(correct[mask].float().mean()) if n else None

    per_class = {name: _acc(labels == c) for c, name in enumerate(classnames)}
    return {
        "top1_all": _acc(torch.ones_like(correct)),
        "top1_base": _acc(~is_novel),
        "top1_novel": _acc(is_novel),
        "num_all": int(labels.numel()),
        "num_base": int((~is_novel).sum()),
        "num_novel": int(is_novel.sum()),
        "num_classes": len(classnames),
        "chance": 1.0 / len(classnames),
        "per_class": per_class,
    }
