"""The head ablation of configs/ov_shapes/grounding_eot_softmax_small.py: ViLD-text's
classification rule read from the prompt's tokens, with K = 2 fusion kept.

Against ``grounding_eot_softmax_small.py`` (softmax over the class tokens and a background, the
"eot" readout) this fixes the three remaining differences from ViLD-text's classifier
(docs/grounding.md, "Where the rest of the gap comes from"):

- the temperature: fixed at 0.01 (ViLD-text's), not learned from 0.1 (GLIP's scale);
- the bias terms: none (scores are scaled cosines), not GLIP's token bias and b_0;
- the text projections: frozen (``freeze_text_projection``), so the tokens entering the fusion
  are the teacher's sentence embeddings up to a fixed rotation.

What is left between this model and ViLD-text is the fusion (text-conditioned proposals and
region features); ``grounding_eot_vildhead_nofusion_small.py`` removes that too.
"""

from .grounding_eot_softmax_small import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    ov_shapes,
    train,
)

model.roi_heads.box_predictor.temperature = 0.01
model.roi_heads.box_predictor.learn_temperature = False
model.roi_heads.box_predictor.token_bias = False
model.freeze_text_projection = True
train.output_dir = "./output/ov_shapes/grounding_eot_vildhead_small"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "ov_shapes", "train"]
