"""ROI heads of the grounding detector: detectron2's FPN ROI heads, scored against a prompt."""

from __future__ import annotations

import dataclasses

import torch
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.structures import ImageList, Instances

from ovdet.methods.grounding.region_word import RegionWordOutputLayers, TextContext

__all__ = ["GroundingROIHeads"]


@ROI_HEADS_REGISTRY.register()
class GroundingROIHeads(StandardROIHeads):
    """:class:`StandardROIHeads` whose box predictor is a :class:`RegionWordOutputLayers`.

    ``forward`` takes the prompt (``text``) and lends it to the box predictor for the call;
    everything else (sampling, pooling, box head, class-agnostic mask head) is detectron2's.
    ``num_classes`` (training labels, background = ``num_classes``) is the predictor's.
    """

    def __init__(self, *, box_predictor: RegionWordOutputLayers, **kwargs) -> None:
        """
        Args:
            box_predictor: a :class:`RegionWordOutputLayers`.
            kwargs: the other arguments of :class:`StandardROIHeads` (``num_classes`` must be
                the predictor's or absent).
        """
        if not isinstance(box_predictor, RegionWordOutputLayers):
            raise TypeError(
                f"GroundingROIHeads: box_predictor must be a RegionWordOutputLayers, got "
                f"{type(box_predictor).__name__}"
            )
        num_classes = kwargs.pop("num_classes", box_predictor.num_classes)
        if int(num_classes) != box_predictor.num_classes:
            raise ValueError(
                f"GroundingROIHeads: num_classes={num_classes} but the box predictor has "
                f"{box_predictor.num_classes} training classes"
            )
        mask_head = kwargs.get("mask_head")
        predictor = getattr(mask_head, "predictor", None)
        if isinstance(predictor, torch.nn.Conv2d) and predictor.out_channels != 1:
            raise ValueError(
                "GroundingROIHeads: the mask head must be class-agnostic (num_classes=1): the "
                "vocabulary changes at test time"
            )
        super().__init__(box_predictor=box_predictor, num_classes=num_classes, **kwargs)
        self._text: TextContext | None = None

    @classmethod
    def from_config(cls, cfg, input_shape):
        raise TypeError("GroundingROIHeads is built from a LazyConfig (see configs/)")

    def label_and_sample_proposals(
        self, proposals: list[Instances], targets: list[Instances]
    ) -> list[Instances]:
        sampled = super().label_and_sample_proposals(proposals, targets)
        if self._text is not None:  # the predictor scores regions against their image's tokens
            self._text.counts = [len(p) for p in sampled]
        return sampled

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
        text: TextContext | None = None,
    ):
        """detectron2's ROI heads with the prompt ``text`` (required)."""
        if text is None:
            raise ValueError("GroundingROIHeads needs text=TextContext(...) (the prompt)")
        text = dataclasses.replace(text, counts=[len(p) for p in proposals])
        self._text = text
        try:
            with self.box_predictor.use_text(text):
                return super().forward(images, features, proposals, targets)
        finally:
            self._text = None
