"""Grounding R-CNN on OV-Shapes with the "eot" phrase readout; otherwise
configs/ov_shapes/grounding_small.py (K=2 fusion, the teacher's text tower reading "a {name}.").

Each class name is read as its own sequence and represented by ONE token, its end-of-text
(EOT) state: the teacher's sentence embedding of "a {name}.", the row ViLD-text's classifier
uses for that class. A prompt of P names is P tokens (the fusion attends over them), a box's
positive is its class's token (sigmoid focal loss), and a class's score is that token's
probability. Why: under CLIP's causal text attention the word states of names that share a
first word ("red circle", "red square") are identical, so the mean over a name's word tokens
and EOT blurs classes (docs/grounding.md, docs/results/grounding_ov_shapes.json).

Options: ``model.freeze_text_projection=True`` also keeps the text projections fixed, so the
tokens are the teacher's embeddings up to a rotation.
"""

from .grounding_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.roi_heads.box_predictor.aggregation = "eot"
train.output_dir = "./output/ov_shapes/grounding_eot_small"
