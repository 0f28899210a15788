"""Grounding R-CNN on OV-Shapes trained on captions (grounding json), tested on class names.

``grounding_small.py`` (model, text encoder, schedule, test) with the training data replaced by
the root's grounding annotations (``grounding_train.json``: one entry per image and caption,
each box with the characters of the caption naming it; docs/grounding.md#training-on-captions):
each training image's prompt is its caption, read whole by the teacher's text tower, and a
box's positive map is the tokens of its name in the caption; no negative names are added.
Open-vocabulary protocol: ``<prefix>_grounding_train_base`` has no novel boxes (novel objects
stay named in the captions, unboxed, as in ``train_base``); set
``dataloader.train.dataset.names`` to the ``grounding_train_all`` split for the oracle. Test:
every class name of ``<prefix>_val`` in the vocabulary, as in ``grounding_small.py``.

Needs a root generated with grounding files (``ovdet data ov-shapes``: roots made before they
existed are refused with what to do) and ``ov_shapes.teacher`` (see ``grounding_small.py``).

Horizontal flips stay on: they make "to the left of" in a pair caption false, but relation
words are never a box's target.
"""

from detectron2.config import LazyCall as L

from ovdet.data.synthetic import ov_shapes_dataset

from .grounding_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

dataloader.train.dataset.names = L(ov_shapes_dataset)(
    root="${ov_shapes.root}", split="grounding_train_base", prefix="${ov_shapes.prefix}"
)
# caption, per-phrase tokens_positive and instances.gt_phrases in the model input
dataloader.train.mapper.grounding = True

train.output_dir = "./output/ov_shapes/grounding_captions_small"
