"""Dataset mapper for open-vocabulary training: albumentations + extra per-image keys.

:class:`OVDatasetMapper` is detectron2's :class:`~detectron2.data.DatasetMapper` with

1. an optional albumentations pipeline, applied in training only and BEFORE detectron2's
   augmentations, that transforms the image, the boxes, the instance masks and the teacher
   proposals together;
2. documented extra keys of the dataset dict, passed to the model:

   ``captions`` (list[str] or str) and ``image_labels`` (list[int] of contiguous class ids
   or list[str] of names)
       Passed through unchanged.
   ``teacher_proposals`` (array-like (N, 4), XYXY in ORIGINAL image pixels)
       Transformed like the image; returned as float32 Tensor (M, 4), XYXY in the pixels of
       ``dataset_dict["image"]``. Boxes that leave the image or become empty are dropped.
   ``teacher_embeddings`` (array-like (N, D), row i belongs to proposal i)
       Returned as float32 Tensor (M, D), rows kept aligned with the surviving proposals.

3. with ``crowd_as_ignore=True``, crowd annotations (``iscrowd: 1``) become **ignore regions**
   in training instead of being dropped: instances with class ``-1``. detectron2's ROI heads
   then never sample a proposal whose best-matching box is one (``subsample_labels`` takes
   neither label ``-1`` as foreground nor as background), so nothing near it is trained as
   background or as any class; the RPN still takes it as an object. Self-training marks
   pseudo boxes of uncertain score this way (:mod:`ovdet.self_train`). An ignore region
   without a segmentation gets its box as mask (never a mask target: the mask head trains on
   sampled foreground only).
4. with ``masks_optional=True`` (masks used, bitmask format), an annotation without a
   ``segmentation``, or whose ``mask_score`` (e.g. SAM's predicted IoU, written by
   ``ovdet pseudo-label --sam`` and ``ovdet sam-masks``) is below ``min_mask_score``, trains
   boxes and classes but not the mask head: its mask is empty and the instances get
   ``gt_mask_valid`` (bool per box), which the ROI heads' mask branch reads
   (:class:`~ovdet.modeling.roi_heads.OVStandardROIHeads`). This is how SAM masks supervise
   the class-agnostic mask head on box-only data (docs/sam.md).
5. with ``grounding=True`` (caption training of the grounding detector; a grounding dataset,
   ``ovdet.data.grounding``), the dataset dict must hold ``caption`` and every annotation its
   ``tokens_positive``. In training the output keeps ``caption``, gets ``tokens_positive``:
   the image's distinct phrases, each a list of ``[start, end]`` character spans (objects
   named by one phrase share it), and the instances get ``gt_phrases`` (long): the index of
   each box's phrase in that list (-1 for an ignore region). At inference ``caption`` is kept.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from typing import Any

# albumentations asks PyPI for its latest version when imported, unless told not to: no
# network at run time (offline machines otherwise wait on a DNS failure and print a warning).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402
import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import BoxMode, polygons_to_bitmask

__all__ = ["OVDatasetMapper", "build_albumentations", "ALBU_INDEX_FIELD"]

logger = logging.getLogger(__name__)

# label field through which the mapper tracks which boxes albumentations kept
ALBU_INDEX_FIELD = "ovdet_index"
# annotation key: whether its mask is a training target (masks_optional)
_MASK_VALID = "_ovdet_mask_valid"
_PHRASE = "_ovdet_phrase"


def build_albumentations(
    transforms: Sequence[A.BasicTransform],
    *,
    min_visibility: float = 0.0,
    min_area: float = 0.0,
    seed: int | None = None,
) -> A.Compose:
    """An ``A.Compose`` whose box handling :class:`OVDatasetMapper` understands.

    Args:
        transforms: albumentations transforms (e.g. ``[A.HorizontalFlip(p=0.5)]``).
        min_visibility: drop a box when less than this fraction of its area stays visible.
        min_area: drop a box whose area (pixels) falls below this after transforming.
        seed: albumentations' random seed (None: not fixed).

    Returns:
        ``A.Compose`` with pascal_voc (XYXY pixel) boxes and the label field
        :data:`ALBU_INDEX_FIELD`.
    """
    return A.Compose(
        list(transforms),
        bbox_params=A.BboxParams(
            format="pascal_voc",
            label_fields=[ALBU_INDEX_FIELD],
            min_visibility=min_visibility,
            min_area=min_area,
        ),
        seed=seed,
    )


def _check_compose(pipeline: A.Compose) -> A.Compose:
    proc = pipeline.processors.get("bboxes")
    params = getattr(proc, "params", None)
    if (
        params is None
        or params.format != "pascal_voc"
        or ALBU_INDEX_FIELD not in (params.label_fields or ())
    ):
        raise ValueError(
            "the albumentations pipeline given to OVDatasetMapper needs "
            f"bbox_params=A.BboxParams(format='pascal_voc', label_fields=['{ALBU_INDEX_FIELD}'])"
            "; build it with ovdet.data.mapper.build_albumentations(transforms) or pass a "
            "list of transforms"
        )
    return pipeline


def _where(dataset_dict: dict) -> str:
    return f"image {dataset_dict.get('file_name', '?')} (image_id={dataset_dict.get('image_id')})"


def _as_2d(value: Any, cols: int | None, key: str, dataset_dict: dict) -> np.ndarray:
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    arr = arr.astype(np.float32)
    if arr.size == 0:
        arr = arr.reshape(0, cols or 0)
    if arr.ndim != 2 or (cols is not None and arr.shape[1] != cols):
        want = f"(N, {cols})" if cols is not None else "(N, D)"
        raise ValueError(
            f"'{key}' of {_where(dataset_dict)} has shape {arr.shape}; expected {want}"
        )
    return arr


class OVDatasetMapper(DatasetMapper):
    """detectron2 DatasetMapper + albumentations + open-vocabulary extra keys.

    See the module docstring for the extra keys. With an albumentations pipeline, instance
    masks (polygons or RLE) are rasterised and transformed with the image, so masks use
    ``instance_mask_format="bitmask"`` (set automatically). Annotations whose box
    albumentations drops (outside the image, below ``min_visibility``) are dropped with their
    masks; crowd annotations are dropped in training, as detectron2 does (or kept as ignore
    regions: ``crowd_as_ignore``).
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: list[T.Augmentation | T.Transform],
        image_format: str,
        albumentations: A.Compose | Sequence[A.BasicTransform] | None = None,
        use_instance_mask: bool = False,
        use_keypoint: bool = False,
        instance_mask_format: str = "polygon",
        keypoint_hflip_indices: np.ndarray | None = None,
        precomputed_proposal_topk: int | None = None,
        recompute_boxes: bool = False,
        teacher_proposal_min_size: float = 0.0,
        crowd_as_ignore: bool = False,
        masks_optional: bool = False,
        min_mask_score: float = 0.0,
        grounding: bool = False,
    ):
        """
        Args:
            is_train: training (annotations transformed, albumentations applied) or inference.
            augmentations: detectron2 augmentations, applied after albumentations.
            image_format: format for :func:`detectron2.data.detection_utils.read_image`.
            albumentations: an ``A.Compose`` from :func:`build_albumentations`, or a list of
                albumentations transforms (wrapped with it); None: none.
            use_instance_mask, use_keypoint, instance_mask_format, keypoint_hflip_indices,
                precomputed_proposal_topk, recompute_boxes: as in detectron2's DatasetMapper.
            teacher_proposal_min_size: teacher proposals whose width or height (in output
                pixels) is not above this are dropped.
            crowd_as_ignore: keep crowd annotations in training as ignore regions (class
                -1; see the module docstring) instead of dropping them as detectron2 does.
            masks_optional: annotations may lack masks (box-only): they get no mask loss.
            min_mask_score: with ``masks_optional``, a mask whose ``mask_score`` is below
                this is no mask target either (SAM masks of low predicted IoU).
            grounding: caption training (see the module docstring, item 5).
        """
        if masks_optional and use_instance_mask and instance_mask_format != "bitmask":
            if albumentations is None:
                raise ValueError(
                    "OVDatasetMapper: masks_optional needs instance_mask_format='bitmask' (an "
                    "absent mask is an empty bitmask)"
                )
        if albumentations is not None and not isinstance(albumentations, A.Compose):
            albumentations = build_albumentations(albumentations)
        if albumentations is not None:
            _check_compose(albumentations)
            if use_keypoint:
                raise ValueError("OVDatasetMapper: albumentations with keypoints is not supported")
            if use_instance_mask and instance_mask_format == "polygon":
                logger.info("OVDatasetMapper: albumentations rasterises masks; using bitmasks")
                instance_mask_format = "bitmask"
        super().__init__(
            is_train,
            augmentations=augmentations,
            image_format=image_format,
            use_instance_mask=use_instance_mask,
            use_keypoint=use_keypoint,
            instance_mask_format=instance_mask_format,
            keypoint_hflip_indices=keypoint_hflip_indices,
            precomputed_proposal_topk=precomputed_proposal_topk,
            recompute_boxes=recompute_boxes,
        )
        self.albumentations = albumentations
        self.teacher_proposal_min_size = teacher_proposal_min_size
        self.crowd_as_ignore = bool(crowd_as_ignore)
        self.masks_optional = bool(masks_optional)
        self.min_mask_score = float(min_mask_score)
        self.grounding = bool(grounding)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        ret = super().from_config(cfg, is_train)
        ret["albumentations"] = None
        return ret

    def _read_image(self, dataset_dict: dict) -> np.ndarray:
        if "file_name" not in dataset_dict:
            raise KeyError(
                f"dataset dict (image_id={dataset_dict.get('image_id')}) has no 'file_name'"
            )
        file_name = dataset_dict["file_name"]
        try:
            return utils.read_image(file_name, format=self.image_format)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"image not found: {file_name} (image_id={dataset_dict.get('image_id')}); "
                "check the dataset's image_root"
            ) from e
        except (OSError, SyntaxError, ValueError) as e:
            raise OSError(f"cannot read image {file_name} (corrupt or not an image): {e}") from e

    def _crowd_to_ignore(self, dataset_dict: dict) -> None:
        """Crowd annotations -> ignore regions: class -1, ``iscrowd`` 0 (kept by detectron2's
        annotation transform), a box-shaped mask when masks are used and there is none."""
        for anno in dataset_dict.get("annotations", []):
            if not anno.get("iscrowd", 0):
                continue
            anno["iscrowd"] = 0
            anno["category_id"] = -1
            if self.use_instance_mask and "segmentation" not in anno:
                x0, y0, x1, y1 = BoxMode.convert(anno["bbox"], anno["bbox_mode"], BoxMode.XYXY_ABS)
                anno["segmentation"] = [[x0, y0, x1, y0, x1, y1, x0, y1]]

    def _drop_unusable_masks(self, dataset_dict: dict) -> None:
        """Box-only annotations and masks below ``min_mask_score`` get an empty mask and are
        marked as no mask target (see the module docstring)."""
        empty = None
        for anno in dataset_dict.get("annotations", []):
            if anno.get("iscrowd", 0):
                continue
            usable = "segmentation" in anno and anno.get("mask_score", 1.0) >= self.min_mask_score
            anno[_MASK_VALID] = usable
            if usable:
                continue
            if empty is None:
                h, w = dataset_dict["height"], dataset_dict["width"]
                empty = mask_util.encode(np.zeros((h, w), dtype=np.uint8, order="F"))
            anno["segmentation"] = dict(empty)

    def _phrases(self, dataset_dict: dict) -> None:
        """``grounding``: the image's distinct phrases as ``tokens_positive``; each annotation
        remembers its phrase's index."""
        from ovdet.data.grounding import check_spans

        where = f"dataset dict of image_id={dataset_dict.get('image_id')}"
        caption = dataset_dict.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise KeyError(
                f"OVDatasetMapper(grounding=True): {where} has no 'caption'; train on a "
                "grounding dataset (ovdet.data.grounding.register_grounding_dataset)"
            )
        phrases: dict[tuple, int] = {}
        for j, anno in enumerate(dataset_dict.get("annotations", [])):
            if anno.get("iscrowd", 0) or anno.get("category_id", 0) < 0:
                anno[_PHRASE] = -1
                continue
            if "tokens_positive" not in anno:
                raise KeyError(
                    f"OVDatasetMapper(grounding=True): annotation {j} of {where} has no "
                    "'tokens_positive' (the caption's character spans naming it)"
                )
            spans = check_spans(anno["tokens_positive"], caption, f"annotation {j} of {where}")
            key = tuple(tuple(s) for s in spans)
            anno[_PHRASE] = phrases.setdefault(key, len(phrases))
        dataset_dict["tokens_positive"] = [[list(s) for s in key] for key in phrases]

    def _transform_annotations(self, dataset_dict: dict, transforms, image_shape) -> None:
        """detectron2's annotation transform; with ``masks_optional`` the instances also get
        ``gt_mask_valid``, and an instance is dropped for an empty box only (an empty mask is
        a box-only instance: detectron2 would drop it); with ``grounding`` they get
        ``gt_phrases``."""
        optional = self.masks_optional and self.use_instance_mask
        if not optional and not self.grounding:
            super()._transform_annotations(dataset_dict, transforms, image_shape)
            return
        annos = []
        for anno in dataset_dict.pop("annotations"):
            if anno.get("iscrowd", 0):
                continue
            if not self.use_keypoint:
                anno.pop("keypoints", None)
            annos.append(
                utils.transform_instance_annotations(
                    anno,
                    transforms,
                    image_shape,
                    keypoint_hflip_indices=self.keypoint_hflip_indices,
                )
            )
        instances = utils.annotations_to_instances(
            annos, image_shape, mask_format=self.instance_mask_format
        )
        if self.grounding:
            instances.gt_phrases = torch.tensor(
                [int(a.get(_PHRASE, -1)) for a in annos], dtype=torch.long
            )
        if not optional:  # detectron2's own steps
            if self.recompute_boxes:
                instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
            dataset_dict["instances"] = utils.filter_empty_instances(instances)
            return
        valid = torch.tensor([bool(a.get(_MASK_VALID, True)) for a in annos], dtype=torch.bool)
        # a mask that a crop emptied is no target either
        valid &= instances.gt_masks.tensor.flatten(1).any(dim=1)
        if self.recompute_boxes:
            boxes = instances.gt_masks.get_bounding_boxes().tensor
            keep_old = ~valid
            boxes[keep_old] = instances.gt_boxes.tensor[keep_old]
            instances.gt_boxes.tensor = boxes
        instances.gt_mask_valid = valid
        dataset_dict["instances"] = utils.filter_empty_instances(instances, by_mask=False)

    def _teacher(self, dataset_dict: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
        boxes = dataset_dict.pop("teacher_proposals", None)
        emb = dataset_dict.pop("teacher_embeddings", None)
        if boxes is None:
            if emb is not None:
                raise ValueError(
                    f"{_where(dataset_dict)} has 'teacher_embeddings' without 'teacher_proposals'"
                )
            return None, None
        boxes = _as_2d(boxes, 4, "teacher_proposals", dataset_dict)
        if emb is not None:
            emb = _as_2d(emb, None, "teacher_embeddings", dataset_dict)
            if len(emb) != len(boxes):
                raise ValueError(
                    f"{_where(dataset_dict)}: {len(boxes)} teacher_proposals but {len(emb)} "
                    "teacher_embeddings rows; they must align"
                )
        return boxes, emb

    def _masks_of(self, anno: dict, height: int, width: int) -> np.ndarray:
        segm = anno["segmentation"]
        if isinstance(segm, list):
            return polygons_to_bitmask(segm, height, width).astype(np.uint8)
        if isinstance(segm, dict):
            if isinstance(segm["counts"], list):
                segm = mask_util.frPyObjects(segm, *segm["size"])
            return mask_util.decode(segm).astype(np.uint8)
        if isinstance(segm, np.ndarray) and segm.ndim == 2:
            return segm.astype(np.uint8)
        raise ValueError(f"cannot rasterise segmentation of type {type(segm).__name__}")

    def _apply_albumentations(
        self,
        dataset_dict: dict,
        image: np.ndarray,
        teacher_boxes: np.ndarray | None,
        teacher_emb: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Run the albumentations pipeline; rewrites ``dataset_dict["annotations"]``."""
        h, w = image.shape[:2]
        annos = [a for a in dataset_dict.get("annotations", []) if a.get("iscrowd", 0) == 0]
        ann_boxes = np.asarray(
            [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annos],
            dtype=np.float32,
        ).reshape(-1, 4)
        if teacher_boxes is None:
            t_boxes = np.zeros((0, 4), np.float32)
        else:
            t_boxes = teacher_boxes
        boxes = np.concatenate([ann_boxes, t_boxes])
        # albumentations rejects boxes outside the image: clip, drop the empty ones
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        index = np.nonzero(valid)[0]

        n = len(annos)
        with_masks = self.use_instance_mask and n > 0 and all("segmentation" in a for a in annos)
        kwargs: dict[str, Any] = {
            "bboxes": boxes[valid],
            ALBU_INDEX_FIELD: index.tolist(),
        }
        if with_masks:
            kwargs["masks"] = [self._masks_of(a, h, w) for a in annos]
        # albumentations' colour transforms expect RGB
        bgr = self.image_format == "BGR"
        out = self.albumentations(image=image[:, :, ::-1].copy() if bgr else image, **kwargs)
        new_image = out["image"][:, :, ::-1].copy() if bgr else out["image"]

        kept = [int(round(float(i))) for i in out[ALBU_INDEX_FIELD]]
        new_boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        new_annos, t_keep, t_new = [], [], []
        for i, box in zip(kept, new_boxes):
            if i < n:
                anno = {**annos[i], "bbox": box.tolist(), "bbox_mode": BoxMode.XYXY_ABS}
                if with_masks:
                    mask = np.asfortranarray(np.asarray(out["masks"][i], dtype=np.uint8))
                    anno["segmentation"] = mask_util.encode(mask)
                elif "segmentation" in anno:
                    anno.pop("segmentation")
                new_annos.append(anno)
            else:
                t_keep.append(i - n)
                t_new.append(box)
        if "annotations" in dataset_dict:
            dataset_dict["annotations"] = new_annos
        if teacher_boxes is not None:
            teacher_boxes = np.asarray(t_new, dtype=np.float32).reshape(-1, 4)
            if teacher_emb is not None:
                teacher_emb = teacher_emb[np.asarray(t_keep, dtype=np.int64)]
        return new_image, teacher_boxes, teacher_emb

    def _transform_teacher(
        self,
        dataset_dict: dict,
        boxes: np.ndarray,
        emb: np.ndarray | None,
        transforms: T.TransformList,
        image_shape: tuple[int, int],
    ) -> None:
        boxes = transforms.apply_box(boxes).astype(np.float32) if len(boxes) else boxes
        h, w = image_shape
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        min_size = self.teacher_proposal_min_size
        keep = ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)
        dataset_dict["teacher_proposals"] = torch.as_tensor(boxes[keep])
        if emb is not None:
            dataset_dict["teacher_embeddings"] = torch.as_tensor(emb[keep])

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: one image in detectron2 dataset format (+ the extra keys).

        Returns:
            dict: detectron2 model input: ``image`` (uint8 Tensor (C, H, W)), ``instances``
            (training), the extra keys as documented in the module docstring.
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        if self.crowd_as_ignore and self.is_train:
            self._crowd_to_ignore(dataset_dict)
        if self.masks_optional and self.use_instance_mask and self.is_train:
            self._drop_unusable_masks(dataset_dict)
        if self.grounding and self.is_train:
            self._phrases(dataset_dict)
        image = self._read_image(dataset_dict)
        utils.check_image_size(dataset_dict, image)
        teacher_boxes, teacher_emb = self._teacher(dataset_dict)

        if self.albumentations is not None and self.is_train:
            if "sem_seg_file_name" in dataset_dict:
                raise ValueError("OVDatasetMapper: albumentations with sem_seg is not supported")
            image, teacher_boxes, teacher_emb = self._apply_albumentations(
                dataset_dict, image, teacher_boxes, teacher_emb
            )

        if "sem_seg_file_name" in dataset_dict:
            sem_seg_gt = utils.read_image(dataset_dict.pop("sem_seg_file_name"), "L").squeeze(2)
        else:
            sem_seg_gt = None
        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        transforms = self.augmentations(aug_input)
        image, sem_seg_gt = aug_input.image, aug_input.sem_seg
        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg_gt.astype("long"))
        if self.proposal_topk is not None:
            utils.transform_proposals(
                dataset_dict, image_shape, transforms, proposal_topk=self.proposal_topk
            )
        if teacher_boxes is not None:
            self._transform_teacher(
                dataset_dict, teacher_boxes, teacher_emb, transforms, image_shape
            )

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            dataset_dict.pop("sem_seg_file_name", None)
            return dataset_dict
        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image_shape)
        return dataset_dict
