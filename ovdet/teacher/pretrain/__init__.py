"""Vision-language pretraining of a small CLIP teacher on COCO-format detection data + captions.

``ovdet pretrain-clip --data DIR --out teacher.pt`` trains :mod:`ovdet.teacher.small_clip` from
scratch on two kinds of (image, text) pairs, mixed at a ratio:

- object crops: every non-crowd box of the training json, cut with context jitter (the box is
  enlarged about its centre by a random factor in ``crop_scale_range``, shifted by up to
  ``crop_shift`` of its size and clipped to the image, the same geometry the region teacher
  uses at test time), paired with a class-name caption from :data:`CAPTION_TEMPLATES`
  ("a photo of a {name}.", ...). All categories of the json are used, base *and* novel: the
  teacher knows them the way web-trained CLIP knows "cat".
- whole images paired with one of their captions from a COCO captions json
  (``{"images": [...], "annotations": [{"image_id", "id", "caption"}]}``).

Objectives: ``itc`` (symmetric InfoNCE) or ``siglip`` (pairwise sigmoid), from
:mod:`ovdet.teacher.clip_losses`; pairs of the same class are positives of each other.
Optimiser AdamW (no weight decay on gains, biases, logit scale/bias), linear warmup then cosine
decay, gradient-norm clipping, logit scale kept in [0, log 100].

After training, zero-shot top-1 accuracy on the object crops of the validation json (all its
classes compete; base / novel from ``split.json`` or ``--novel``) is measured with the
template ensemble, and the model is saved as a plain state_dict (``torch.save`` of tensors, or
safetensors for a ``.safetensors`` path) with its open_clip model config ``<stem>.json`` beside
it. It loads with ``open_clip.create_model("ovdet-small-clip", pretrained=path)`` (after
:func:`ovdet.teacher.small_clip.register_clip_configs`; ``force_image_size=`` when trained at a
non-default ``--image-size``; ``ovdet-small-clip-sigmoid`` for ``--objective siglip``) or with
:func:`ovdet.teacher.small_clip.load_small_clip`.

Data directory layout read by default (each file can be given explicitly instead)::

    DIR/train_all.json (else train.json)   COCO instances used for crops
    DIR/val.json                          COCO instances for zero-shot evaluation
    DIR/captions_train.json               COCO captions (optional: no whole-image pairs)
    DIR/split.json                        {"base": [...], "novel": [...]} (optional)
    DIR/images/{train,val}/...            images; ``file_name`` is looked up under
                                          DIR/images/<split>, DIR/images, then DIR
"""

from ovdet.teacher.pretrain.config import CAPTION_TEMPLATES, PretrainConfig
from ovdet.teacher.pretrain.datasets import CropCaptionDataset, ImageCaptionDataset, crop_region
from ovdet.teacher.pretrain.evaluate import evaluate_zero_shot, format_accuracy
from ovdet.teacher.pretrain.files import (
    CaptionedImage,
    CocoInstances,
    DataFiles,
    ObjectCrop,
    read_captions,
    read_coco_instances,
    resolve_data_files,
)
from ovdet.teacher.pretrain.train import pretrain_clip

__all__ = [
    "CAPTION_TEMPLATES",
    "CaptionedImage",
    "CocoInstances",
    "CropCaptionDataset",
    "DataFiles",
    "ImageCaptionDataset",
    "ObjectCrop",
    "PretrainConfig",
    "crop_region",
    "evaluate_zero_shot",
    "format_accuracy",
    "pretrain_clip",
    "read_captions",
    "read_coco_instances",
    "resolve_data_files",
]
