"""Ignore regions: crowd boxes kept as class -1 by the mapper, never sampled by the ROI heads."""

from __future__ import annotations

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.roi_heads import ROIHeads
from detectron2.structures import Boxes, BoxMode, Instances
from detectron2.utils.events import EventStorage
from PIL import Image

from ovdet.data.mapper import OVDatasetMapper


def _dict(tmp_path):
    path = tmp_path / "im.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(path)
    annos = [
        {"bbox": [2, 2, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1, "iscrowd": 0,
         "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
        {"bbox": [30, 10, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2,
         "iscrowd": 1},  # no segmentation: gets its box
    ]  # fmt: skip
    return {"file_name": str(path), "height": 40, "width": 60, "image_id": 1, "annotations": annos}


def _mapper(ignore: bool):
    return OVDatasetMapper(
        True,
        augmentations=[T.NoOpTransform()],
        image_format="BGR",
        use_instance_mask=True,
        instance_mask_format="bitmask",
        crowd_as_ignore=ignore,
    )


def test_mapper_keeps_crowd_as_ignore(tmp_path):
    out = _mapper(True)(_dict(tmp_path))["instances"]
    assert out.gt_classes.tolist() == [1, -1]
    assert out.gt_boxes.tensor.tolist()[1] == [30, 10, 50, 30]
    assert out.gt_masks.tensor[1].sum() == 20 * 20  # the box as its (unused) mask
    # default: dropped, as detectron2 does
    out = _mapper(False)(_dict(tmp_path))["instances"]
    assert out.gt_classes.tolist() == [1]


def test_inference_mapper_unchanged(tmp_path):
    mapper = OVDatasetMapper(
        False, augmentations=[T.NoOpTransform()], image_format="BGR", crowd_as_ignore=True
    )
    assert "instances" not in mapper(_dict(tmp_path))


def test_roi_sampling_skips_proposals_on_ignore_regions():
    heads = ROIHeads(
        num_classes=3,
        batch_size_per_image=64,
        positive_fraction=0.5,
        proposal_matcher=Matcher([0.5], [0, 1], allow_low_quality_matches=False),
        proposal_append_gt=True,
    )
    target = Instances((100, 100))
    target.gt_boxes = Boxes(torch.tensor([[0.0, 0, 20, 20], [50, 50, 80, 80]]))
    target.gt_classes = torch.tensor([1, -1])
    proposals = Instances((100, 100))
    proposals.proposal_boxes = Boxes(
        torch.tensor(
            [[1.0, 1, 20, 20], [51, 51, 80, 80], [52, 50, 80, 79], [0, 60, 10, 70], [85, 0, 99, 9]]
        )
    )
    proposals.objectness_logits = torch.zeros(5)
    with EventStorage():
        (sampled,) = heads.label_and_sample_proposals([proposals], [target])
    boxes = sampled.proposal_boxes.tensor.tolist()
    classes = sampled.gt_classes.tolist()
    # nothing near the ignore box, neither as foreground nor as background
    assert all(b[0] < 50 or b[1] < 50 for b in boxes)
    assert -1 not in classes
    assert sorted(classes) == [1, 1, 3, 3]  # the gold box and its proposal; two background
