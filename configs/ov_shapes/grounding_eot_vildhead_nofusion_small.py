"""configs/ov_shapes/grounding_eot_vildhead_small.py with K = 0 fusion layers: ViLD-text's
classifier (fixed temperature 0.01, softmax over the class embeddings and a learned background,
no bias), its class embeddings read by the grounding detector's token path (each name's
end-of-text state of "a {name}.", a fixed rotation). It should match ViLD-text; the step from
here to ``grounding_eot_vildhead_small.py`` is the fusion alone (docs/grounding.md)."""

from .grounding_eot_vildhead_small import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    ov_shapes,
    train,
)

model.fusion_layers = 0
train.output_dir = "./output/ov_shapes/grounding_eot_vildhead_nofusion_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
