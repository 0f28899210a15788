"""ViLD-ensemble box head: two box heads of identical architecture on the same pooled features."""

from __future__ import annotations

import torch
from detectron2.layers import ShapeSpec
from torch import nn

__all__ = ["ViLDEnsembleBoxHead"]


def _flat_size(head: nn.Module, which: str) -> int:
    shape = getattr(head, "output_shape", None)
    if not isinstance(shape, ShapeSpec) or shape.channels is None:
        raise TypeError(
            f"ViLDEnsembleBoxHead: the {which} head ({type(head).__name__}) has no output_shape "
            "ShapeSpec; use a detectron2 box head such as FastRCNNConvFCHead"
        )
    return int(shape.channels) * int(shape.height or 1) * int(shape.width or 1)


class ViLDEnsembleBoxHead(nn.Module):
    """The two second-stage heads of ViLD-ensemble (Gu et al., ICLR 2022, §3.4).

    ViLD-text and ViLD-image compete when they share one box head: the classification loss
    pulls every region embedding towards its base class or the background embedding (novel
    objects included, since they are unannotated), while the distillation loss pulls the same
    embeddings towards the CLIP image embeddings. ViLD-ensemble removes the competition with
    *two heads of identical architecture*: the text head (box features for classification and
    box regression) and the image head (box features for the distilled CLIP-space embedding).
    They share the backbone, the FPN and the pooled RoI features.

    ``forward`` returns the two heads' flattened outputs side by side, ``(R, T + I)``: the
    first ``text_size`` columns from ``text_head``, the last ``image_size`` from
    ``image_head``. :class:`~ovdet.methods.vild_ensemble.OVEnsembleOutputLayers` built with
    ``image_input_size=image_size`` splits them again, so detectron2's box path (pooler, box
    head, predictor) is unchanged; distillation reads :meth:`image_features` only.

    ``detach_image_input=True`` stops the image head's gradient at the pooled features: the
    distillation loss then trains only the image head, never the shared backbone / FPN, and
    the text head and the RPN train exactly as in ViLD-text. This is a deviation from the
    paper (whose image head also trains the backbone) for short schedules from scratch; the
    paper's behaviour is the default.

    Args:
        text_head: the ViLD-text box head (e.g. ``FastRCNNConvFCHead``).
        image_head: the image box head, usually the same architecture (separate weights).
        detach_image_input: stop the image head's gradient at its input (see above).
    """

    def __init__(
        self, text_head: nn.Module, image_head: nn.Module, *, detach_image_input: bool = False
    ) -> None:
        super().__init__()
        if text_head is image_head:
            raise ValueError(
                "ViLDEnsembleBoxHead: text_head and image_head are the same module; the point "
                "of the ensemble is separate weights (build two heads)"
            )
        self.text_size = _flat_size(text_head, "text")
        self.image_size = _flat_size(image_head, "image")
        self.text_head = text_head
        self.image_head = image_head
        self.detach_image_input = bool(detach_image_input)

    @property
    def output_shape(self) -> ShapeSpec:
        return ShapeSpec(channels=self.text_size + self.image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, P, P) pooled features -> (R, text_size + image_size) box features."""
        text = torch.flatten(self.text_head(x), start_dim=1)
        return torch.cat([text, self.image_features(x)], dim=1)

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, P, P) pooled features -> (R, image_size) features of the image head only.

        Region distillation embeds its regions with this (the text head's output would be
        thrown away).
        """
        image = self.image_head(x.detach() if self.detach_image_input else x)
        return torch.flatten(image, start_dim=1)

    def extra_repr(self) -> str:
        return f"detach_image_input={self.detach_image_input}"
