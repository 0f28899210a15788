"""Pretraining the small SAM (:func:`~ovdet.modeling.sam.build.build_small_sam`) on the
instance masks of a COCO-format dataset, base classes only: ``ovdet pretrain-sam``.

Data (:mod:`.data`): ``DIR/train_base.json`` (else ``train.json``) for training, kept to the
base classes of ``DIR/split.json`` when there is one; ``DIR/val.json`` for evaluation; images
under ``DIR/images/<split>``, ``DIR/images`` or ``DIR``. Every annotation needs a
``segmentation`` (polygons or RLE, decoded with pycocotools): a dataset without masks is
refused. A sample is an image (SAM's ``ResizeLongestSide`` + ``Sam.preprocess``, as
:class:`~ovdet.modeling.sam.box_prompt.BoxPromptedSAM` does), up to ``max_boxes`` of its
ground-truth boxes jittered as in SAM's training (N(0, 10 % of the side) per coordinate, at
most 20 px) and their masks on the decoder's low-resolution grid (4x below the encoder's
input: resized as the image, padded, 4 x 4 averaged, thresholded at 0.5).

Training (:mod:`.train`): the image encoder runs once per image; all its boxes go through the
prompt encoder and the mask decoder batched (``multimask_output=False``, as at inference).
Loss as in the SAM paper on the low-resolution logits: 20 x focal + 1 x dice, plus the MSE
between the IoU head and the IoU of the thresholded predicted mask. AdamW, linear warmup then
cosine decay, gradient clipping; seeded. ``checkpoint.pth`` (model, optimiser, schedule,
epoch/step, RNG) is written atomically after every epoch; ``resume`` continues it to the same
weights as an uninterrupted run. At the end ``sam_small.pth`` (a plain state_dict:
``sam_from_spec("small:PATH")``, ``build_small_sam(checkpoint=PATH)``) and ``metrics.json``.

Evaluation (:mod:`.evaluate`): the IoU of the mask predicted from each ground-truth box of the
validation json with the object's mask at image resolution, averaged over base and over novel
objects separately (novel classes are never trained on), for the trained and the untrained SAM.

See docs/sam.md, "Pretraining the small SAM".
"""

from ovdet.modeling.sam.pretrain.data import (
    MaskedImage,
    SamData,
    SamMaskDataset,
    decode_segmentation,
    read_masked_images,
    resolve_sam_data,
)
from ovdet.modeling.sam.pretrain.evaluate import evaluate_box_miou, mask_iou, mean_iou_by_split
from ovdet.modeling.sam.pretrain.train import (
    CHECKPOINT,
    WEIGHTS,
    SamPretrainConfig,
    pretrain_sam,
    sam_losses,
)

__all__ = [
    "CHECKPOINT",
    "WEIGHTS",
    "MaskedImage",
    "SamData",
    "SamMaskDataset",
    "SamPretrainConfig",
    "decode_segmentation",
    "evaluate_box_miou",
    "mask_iou",
    "mean_iou_by_split",
    "pretrain_sam",
    "read_masked_images",
    "resolve_sam_data",
    "sam_losses",
]
