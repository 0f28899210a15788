"""SAM-supervised mask heads: SAM masks for box-only annotations (ovdet sam-masks), the
mapper's optional masks (low-score SAM masks are no target) and the mask loss skipping them."""

from __future__ import annotations

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.structures import BoxMode
from PIL import Image

from ovdet.data.mapper import OVDatasetMapper
from ovdet.modeling.sam import BoxPromptedSAM, build_small_sam
from ovdet.utils.errors import InputError


@pytest.fixture(scope="module")
def sam_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam_sup") / "small_sam.pth"
    torch.save(build_small_sam().state_dict(), path)
    return path


def _dataset(tmp_path, photo):
    (tmp_path / "images").mkdir()
    Image.fromarray(photo).save(tmp_path / "images" / "a.png")
    Image.fromarray(photo[:200, :300]).save(tmp_path / "images" / "b.png")
    square = [[10, 10, 60, 10, 60, 60, 10, 60]]
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 480, "width": 640},
                   {"id": 2, "file_name": "b.png", "height": 200, "width": 300}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 190, 280], "area": 1,
             "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500,
             "iscrowd": 0, "segmentation": square},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [100, 50, 60, 70], "area": 1,
             "iscrowd": 0},
        ],
    }  # fmt: skip
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(data))
    return path


def test_sam_masks_fill_box_only_annotations_and_resume(tmp_path, photo, sam_ckpt):
    from ovdet.modeling.sam.annotate import add_sam_masks

    src = _dataset(tmp_path, photo)
    out = tmp_path / "with_masks.json"
    result = add_sam_masks(src, tmp_path / "images", f"small:{sam_ckpt}", out, progress=False)
    assert result["masked"] == 2 and result["images"] == 2
    data = json.loads(out.read_text())
    anns = {a["id"]: a for a in data["annotations"]}
    assert anns[2]["segmentation"] == [[10, 10, 60, 10, 60, 60, 10, 60]]  # kept
    assert "mask_score" not in anns[2]
    sam = BoxPromptedSAM(build_small_sam(checkpoint=sam_ckpt), device="cpu")
    want = sam.predict(photo, np.array([[10.0, 20, 200, 300]]))
    got = mask_util.decode(anns[1]["segmentation"]).astype(bool)
    assert np.array_equal(got, want.masks[0].numpy())
    assert anns[1]["mask_score"] == pytest.approx(float(want.iou[0]), abs=1e-6)
    # resume: a finished run redoes nothing and writes the same bytes
    before = out.read_bytes()
    out.unlink()
    again = add_sam_masks(src, tmp_path / "images", f"small:{sam_ckpt}", out, progress=False)
    assert again == result and out.read_bytes() == before
    with pytest.raises(InputError, match="another sam-masks run"):
        add_sam_masks(src, tmp_path / "images", f"small:{sam_ckpt}", out, replace=True)


def _mapper(**kw):
    return OVDatasetMapper(
        True,
        augmentations=[T.NoOpTransform()],
        image_format="BGR",
        use_instance_mask=True,
        instance_mask_format="bitmask",
        **kw,
    )


def test_mapper_optional_masks_and_score_threshold(tmp_path):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "im.png")
    full = mask_util.encode(np.asfortranarray(np.ones((40, 60), np.uint8)))
    annos = [
        {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
         "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]},  # gold mask
        {"bbox": [20, 5, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},  # box only
        {"bbox": [30, 20, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
         "segmentation": dict(full), "mask_score": 0.9},
        {"bbox": [40, 20, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
         "segmentation": dict(full), "mask_score": 0.3},  # below the threshold
    ]  # fmt: skip
    record = {"file_name": str(tmp_path / "im.png"), "height": 40, "width": 60,
              "image_id": 1, "annotations": annos}  # fmt: skip
    out = _mapper(masks_optional=True, min_mask_score=0.5)(record)["instances"]
    assert out.gt_mask_valid.tolist() == [True, False, True, False]
    assert len(out) == 4 and out.gt_masks.tensor[1].sum() == 0
    with pytest.raises(ValueError, match="masks_optional needs instance_mask_format='bitmask'"):
        OVDatasetMapper(True, augmentations=[], image_format="BGR", use_instance_mask=True,
                        instance_mask_format="polygon", masks_optional=True)  # fmt: skip


def test_registered_dataset_keeps_mask_score(tmp_path):
    """mask_score survives detectron2's json loading, so min_mask_score acts on real datasets
    (load_coco_json drops unknown annotation fields unless asked to keep them)."""
    from detectron2.data import DatasetCatalog

    from ovdet.data.datasets import register_ov_dataset

    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "im.png")
    full = mask_util.encode(np.asfortranarray(np.ones((40, 60), np.uint8)))
    full["counts"] = full["counts"].decode("ascii")
    data = {
        "images": [{"id": 1, "file_name": "im.png", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [30, 20, 10, 10], "area": 100,
             "iscrowd": 0, "segmentation": full, "mask_score": 0.9},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [40, 20, 10, 10], "area": 100,
             "iscrowd": 0, "segmentation": full, "mask_score": 0.3},
        ],
    }  # fmt: skip
    (tmp_path / "d.json").write_text(json.dumps(data))
    register_ov_dataset("sam_sup_mask_score", tmp_path / "d.json", tmp_path, novel=["other"],
                        replace=True)  # fmt: skip
    record = DatasetCatalog.get("sam_sup_mask_score")[0]
    assert [a["mask_score"] for a in record["annotations"]] == [0.9, 0.3]
    out = _mapper(masks_optional=True, min_mask_score=0.5)(record)["instances"]
    assert out.gt_mask_valid.tolist() == [True, False]


def test_mask_loss_skips_proposals_without_mask_targets(tiny_fpn_config, build_model):
    """The mask loss with box-only instances equals the loss of the others alone."""
    from detectron2.structures import BitMasks, Boxes, Instances
    from detectron2.utils.events import EventStorage

    cfg = tiny_fpn_config(torch.randn(3, 8))
    cfg.model.roi_heads.mask_in_features = ["p2", "p3", "p4", "p5"]
    model = build_model(cfg)
    if not model.roi_heads.mask_on:
        pytest.skip("the tiny config has no mask head")
    model.train()
    image = torch.rand(3, 64, 64) * 255

    def batch(valid):
        inst = Instances((64, 64))
        inst.gt_boxes = Boxes(torch.tensor([[4.0, 4, 30, 30], [34, 34, 60, 60]]))
        inst.gt_classes = torch.tensor([0, 1])
        masks = torch.zeros(2, 64, 64, dtype=torch.bool)
        masks[0, 4:30, 4:30] = True
        masks[1, 40:50, 40:50] = True
        inst.gt_masks = BitMasks(masks)
        if valid is not None:
            inst.gt_mask_valid = torch.tensor(valid)
        return [{"image": image, "height": 64, "width": 64, "instances": inst}]

    losses = []
    for valid in (None, [True, False]):
        torch.manual_seed(0)
        with EventStorage():
            losses.append(model(batch(valid)))
    assert losses[0]["loss_box_reg"] == losses[1]["loss_box_reg"]
    assert losses[0]["loss_mask"] != losses[1]["loss_mask"]
    # with no valid mask at all, the mask loss is 0 and still has a graph
    torch.manual_seed(0)
    with EventStorage():
        none = model(batch([False, False]))
    assert none["loss_mask"].item() == 0.0 and none["loss_mask"].requires_grad
