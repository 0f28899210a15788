"""TeacherTargetsMapper: store targets go through the image geometry; missing images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.structures import BoxMode
from PIL import Image

from ovdet.data.region_store import RegionEmbeddingStore
from ovdet.data.teacher_mapper import TeacherTargetsMapper

H, W, D = 40, 60, 8
BOXES = torch.tensor([[5.0, 10.0, 20.0, 30.0], [30.0, 2.0, 58.0, 38.0]])


@pytest.fixture
def store(tmp_path) -> RegionEmbeddingStore:
    store = RegionEmbeddingStore(tmp_path / "regions", teacher="fake-teacher", dim=D)
    emb = torch.nn.functional.normalize(
        torch.randn(2, D, generator=torch.Generator().manual_seed(0))
    )
    with store.writer() as w:
        w.add(1, BOXES, emb, torch.tensor([0.9, 0.8]))
        w.add(3, torch.zeros(0, 4), torch.zeros(0, D))
    return store


@pytest.fixture
def record(tmp_path) -> dict:
    path = tmp_path / "img.png"
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return {
        "file_name": str(path),
        "image_id": 1,
        "height": H,
        "width": W,
        "annotations": [
            {"bbox": [5.0, 10.0, 20.0, 30.0], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}
        ],
    }


def _mapper(store, augmentations, **kwargs) -> TeacherTargetsMapper:
    return TeacherTargetsMapper(
        True, store=store, augmentations=augmentations, image_format="RGB", **kwargs
    )


def test_flip_keeps_proposals_aligned_with_image_and_boxes(store, record):
    mapper = _mapper(store, [T.RandomFlip(prob=1.0, horizontal=True)])
    out = mapper(record)
    flipped = torch.stack([W - BOXES[:, 2], BOXES[:, 1], W - BOXES[:, 0], BOXES[:, 3]], dim=1)
    assert torch.allclose(out["teacher_proposals"], flipped)
    # the GT box equals proposal 0 before the flip: both went through the same transform
    assert torch.allclose(out["instances"].gt_boxes.tensor[0], out["teacher_proposals"][0])
    expected = store.get(1)["embeddings"].float()
    assert out["teacher_embeddings"].dtype == torch.float32
    assert torch.equal(out["teacher_embeddings"], expected)
    assert out["image"].shape == (3, H, W)
    # the flipped image is the mirror of the original
    original = torch.as_tensor(np.array(Image.open(record["file_name"]))).permute(2, 0, 1)
    assert torch.equal(out["image"], original.flip(-1))


def test_resize_and_flip_from_store_path(store, record):
    mapper = _mapper(str(store.root), [T.Resize((2 * H, 2 * W)), T.RandomFlip(prob=1.0)])
    out = mapper(record)
    b = BOXES * 2
    w = 2 * W
    assert torch.allclose(
        out["teacher_proposals"], torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], dim=1)
    )
    assert out["teacher_embeddings"].shape == (2, D)


def test_missing_images(store, record):
    record = {**record, "image_id": 2}
    with pytest.raises(KeyError, match="image_id=2 .*not in region store.*missing='empty'"):
        _mapper(store, [])(record)
    out = _mapper(store, [], missing="empty")(record)
    assert out["teacher_proposals"].shape == (0, 4)
    assert out["teacher_embeddings"].shape == (0, D)
    # marked, with the store, for the region distiller to count (not silent)
    assert out["teacher_missing"] is True
    assert out["teacher_store"] == str(store.root)
    # stored with zero proposals: not missing
    out = _mapper(store, [])({**record, "image_id": 3})
    assert out["teacher_proposals"].shape == (0, 4)
    assert out["teacher_missing"] is False and out["teacher_store"] == str(store.root)
    out = _mapper(store, [], missing="empty")({**record, "image_id": 1})
    assert out["teacher_missing"] is False and len(out["teacher_proposals"]) == 2
    with pytest.raises(ValueError, match="missing must be one of"):
        _mapper(store, [], missing="skip")


def test_dataset_proposals_conflict_with_the_store(store, record):
    with pytest.raises(ValueError, match="already has 'teacher_proposals'"):
        _mapper(store, [])({**record, "teacher_proposals": [[0, 0, 5, 5]]})
    with pytest.raises(KeyError, match="no 'image_id'"):
        _mapper(store, [])({k: v for k, v in record.items() if k != "image_id"})
