"""OVDatasetMapper: albumentations + detectron2 augmentations + extra keys."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from ovdet.data import OVDatasetMapper, build_albumentations

IMAGE_ID = 194216  # 640 x 294, three annotations


@pytest.fixture
def record(sample_dataset) -> dict:
    rec = next(d for d in DatasetCatalog.get(sample_dataset) if d["image_id"] == IMAGE_ID)
    assert len(rec["annotations"]) == 3
    return rec


def _xyxy(rec: dict) -> np.ndarray:
    return np.array(
        [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in rec["annotations"]],
        dtype=np.float32,
    )


def _flip(boxes: np.ndarray, width: int) -> np.ndarray:
    out = boxes.copy()
    out[:, 0], out[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return out


def test_albumentations_flip_scale_keeps_boxes_masks_proposals(record):
    w, h = record["width"], record["height"]
    proposals = np.array(
        [[10, 20, 110, 120], [300, 50, 400, 250], [700, 10, 800, 50]], dtype=np.float32
    )  # the last lies outside the image
    emb = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    rec = {**record, "teacher_proposals": proposals, "teacher_embeddings": emb}
    rec["captions"] = ["a man on a motorcycle"]
    rec["image_labels"] = [3]
    mapper = OVDatasetMapper(
        is_train=True,
        augmentations=[T.ResizeShortestEdge(short_edge_length=100, max_size=1000)],
        image_format="BGR",
        use_instance_mask=True,
        albumentations=[
            A.HorizontalFlip(p=1.0),
            A.RandomScale(scale_limit=(-0.5, -0.5), p=1.0),
        ],
    )
    assert mapper.instance_mask_format == "bitmask"
    out = mapper(rec)
    _, out_h, out_w = out["image"].shape
    assert out_h == 100
    sx, sy = out_w / w, out_h / h
    scale = np.array([sx, sy, sx, sy], dtype=np.float32)
    inst = out["instances"]
    assert len(inst) == 3
    expected = _flip(_xyxy(record), w) * scale
    np.testing.assert_allclose(inst.gt_boxes.tensor.numpy(), expected, atol=0.05)
    # each mask lies inside its (transformed) box
    assert inst.gt_masks.tensor.shape == (3, out_h, out_w)
    mask_boxes = inst.gt_masks.get_bounding_boxes().tensor
    box = inst.gt_boxes.tensor
    assert bool((mask_boxes[:, :2] >= box[:, :2] - 1.5).all())
    assert bool((mask_boxes[:, 2:] <= box[:, 2:] + 1.5).all())
    assert bool((inst.gt_masks.tensor.sum((1, 2)) > 0).all())
    # teacher proposals: the one outside the image is dropped with its embedding row
    np.testing.assert_allclose(
        out["teacher_proposals"].numpy(), _flip(proposals[:2], w) * scale, atol=0.05
    )
    assert torch.equal(out["teacher_embeddings"], torch.as_tensor(emb[:2]))
    assert out["captions"] == ["a man on a motorcycle"] and out["image_labels"] == [3]
    assert record["annotations"][0]["bbox_mode"] == BoxMode.XYWH_ABS  # input not modified


def test_albumentations_drops_boxes_cropped_away(record):
    w, h = record["width"], record["height"]
    boxes = _xyxy(record)
    mapper = OVDatasetMapper(
        is_train=True,
        augmentations=[],
        image_format="RGB",
        use_instance_mask=True,
        albumentations=build_albumentations([A.Crop(0, 0, w // 2, h)]),
    )
    out = mapper(dict(record))
    inside = boxes[:, 0] < w // 2
    inst = out["instances"]
    assert len(inst) == int(inside.sum()) and len(inst.gt_masks) == len(inst)
    assert out["image"].shape[1:] == (h, w // 2)
    assert bool((inst.gt_boxes.tensor[:, 2] <= w // 2).all())


def test_detectron2_flip_transforms_teacher_proposals(record):
    w = record["width"]
    proposals = np.array([[10, 20, 110, 120], [300, 50, 400, 250]], dtype=np.float32)
    rec = {**record, "teacher_proposals": proposals.tolist()}
    mapper = OVDatasetMapper(
        is_train=True,
        augmentations=[T.RandomFlip(prob=1.0, horizontal=True)],
        image_format="BGR",
        use_instance_mask=True,
    )
    out = mapper(rec)
    np.testing.assert_allclose(out["teacher_proposals"].numpy(), _flip(proposals, w))
    np.testing.assert_allclose(
        out["instances"].gt_boxes.tensor.numpy(), _flip(_xyxy(record), w), atol=1e-3
    )
    assert "teacher_embeddings" not in out
    # inference: no instances, proposals still transformed
    test_out = OVDatasetMapper(
        is_train=False, augmentations=[T.RandomFlip(prob=1.0)], image_format="BGR"
    )(rec)
    assert "instances" not in test_out and "annotations" not in test_out
    np.testing.assert_allclose(test_out["teacher_proposals"].numpy(), _flip(proposals, w))


def test_bad_inputs_name_the_image(record, tmp_path):
    mapper = OVDatasetMapper(is_train=True, augmentations=[], image_format="BGR")
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        mapper({**record, "file_name": missing})
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg at all")
    with pytest.raises(OSError, match="corrupt.jpg"):
        mapper({**record, "file_name": str(corrupt)})
    with pytest.raises(ValueError, match="teacher_embeddings rows"):
        mapper(
            {
                **record,
                "teacher_proposals": np.zeros((2, 4)),
                "teacher_embeddings": np.zeros((3, 8)),
            }
        )
    with pytest.raises(ValueError, match=r"teacher_proposals.*\(N, 4\)"):
        mapper({**record, "teacher_proposals": np.zeros((2, 5))})


def test_rejects_incompatible_compose():
    compose = A.Compose([A.HorizontalFlip(p=1.0)], bbox_params=A.BboxParams(format="coco"))
    with pytest.raises(ValueError, match="build_albumentations"):
        OVDatasetMapper(is_train=True, augmentations=[], image_format="BGR", albumentations=compose)


def test_importing_the_mapper_asks_no_server():
    """albumentations looks up its latest version online when imported, unless told not to;
    ovdet imports it with that check off (no network at run time)."""
    import subprocess
    import sys

    probe = (
        "import os, urllib.request\n"
        "os.environ.pop('NO_ALBUMENTATIONS_UPDATE', None)\n"
        "calls = []\n"
        "def offline(*args, **kwargs):\n"
        "    calls.append(args)\n"
        "    raise OSError('offline')\n"
        "urllib.request.urlopen = offline\n"
        "import ovdet.data.mapper\n"
        "print(len(calls), os.environ.get('NO_ALBUMENTATIONS_UPDATE'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split()[-2:] == ["0", "1"], out.stdout + out.stderr
