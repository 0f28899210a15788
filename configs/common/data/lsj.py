"""Large-scale jitter (ViLD's augmentation), for the dataloaders of ``coco_format.py``.

Training (tensorflow/tpu ``projects/vild/configs/vild_resnet.yaml``, ``vild_parser``:
``output_size: [1024, 1024]``, ``aug_scale_min: 0.1``, ``aug_scale_max: 2.0``,
``aug_rand_hflip: true``): resize the image to fit a random fraction in [0.1, 2.0] of
1024 x 1024 (aspect ratio kept), take a random 1024 x 1024 crop, pad the bottom and right to
1024 x 1024, flip horizontally with probability 0.5. Test: fit 1024 x 1024 (the longer side
becomes 1024), as ViLD evaluates.

The crop is :class:`ovdet.data.crop.PolygonFixedSizeCrop` (detectron2's ``FixedSizeCrop`` that
clips polygon masks without shapely). Use: ``dataloader.train.mapper.augmentations =
lsj_train()``, ``dataloader.test.mapper.augmentations = lsj_test()``.
"""

from detectron2.config import LazyCall as L
from detectron2.data import transforms as T

from ovdet.data.crop import PolygonFixedSizeCrop

LSJ_SIZE = 1024
LSJ_SCALES = (0.1, 2.0)


def lsj_train(
    size: int = LSJ_SIZE, min_scale: float = LSJ_SCALES[0], max_scale: float = LSJ_SCALES[1]
):
    """Training augmentations: ResizeScale -> random crop + pad to ``size`` -> flip."""
    return [
        L(T.ResizeScale)(
            min_scale=min_scale, max_scale=max_scale, target_height=size, target_width=size
        ),
        L(PolygonFixedSizeCrop)(crop_size=(size, size)),
        L(T.RandomFlip)(horizontal=True),
    ]


def lsj_test(size: int = LSJ_SIZE):
    """Test augmentation: the longer side becomes ``size`` (the image fits size x size)."""
    return [L(T.ResizeShortestEdge)(short_edge_length=size, max_size=size)]
