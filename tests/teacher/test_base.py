"""The RegionTeacher interface: any subclass plugs into offline extraction and online targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ovdet.data.region_store import RegionEmbeddingStore
from ovdet.teacher import OnlineRegionTeacher, RegionTeacher
from ovdet.teacher.extract import extract_regions
from ovdet.teacher.geometry import check_boxes, pixel_crop_boxes, to_uint8_hwc


class MeanColourTeacher(RegionTeacher):
    """A tiny teacher: the normalised (mean R, mean G, mean B, 1) of each box's pixels."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def dim(self) -> int:
        return 4

    @property
    def identity(self) -> str:
        return "test:mean-colour"

    def embed(self, image, boxes) -> torch.Tensor:
        self.calls += 1
        array = to_uint8_hwc(image, owner="MeanColourTeacher")
        size = array.shape[:2]
        pixels = pixel_crop_boxes(check_boxes(boxes, size, owner="MeanColourTeacher"), size)
        rows = [
            [*array[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0).tolist(), 255.0]
            for x0, y0, x1, y1 in pixels.tolist()
        ]
        return F.normalize(torch.tensor(rows, dtype=torch.float32).reshape(-1, 4), dim=-1)


def test_region_teacher_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        RegionTeacher()

    class NoEmbed(RegionTeacher):
        dim = 3
        identity = "x"

    with pytest.raises(TypeError, match="embed"):
        NoEmbed()


def test_embed_batch_loops_embed():
    teacher = MeanColourTeacher()
    image = np.full((8, 8, 3), 10, dtype=np.uint8)
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 4.0]]), np.zeros((0, 4))]
    out = teacher.embed_batch([image, image], boxes)
    assert [tuple(o.shape) for o in out] == [(1, 4), (0, 4)] and teacher.calls == 2
    with pytest.raises(ValueError, match="MeanColourTeacher.embed_batch: got 2 images but 1"):
        teacher.embed_batch([image, image], [np.zeros((0, 4))])


def test_custom_teacher_with_extract_regions(tmp_path):
    rng = np.random.default_rng(0)
    dicts, proposals = [], {}
    for k, (h, w) in enumerate([(24, 32), (20, 28)]):
        path = tmp_path / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        dicts.append({"file_name": str(path), "image_id": k, "height": h, "width": w})
        proposals[k] = np.array([[1.0, 2.0, 12.0, 14.0, 0.9], [5.0, 0.0, 20.0, 9.5, 0.4]])
    teacher = MeanColourTeacher()
    store = RegionEmbeddingStore(tmp_path / "regions", teacher=teacher.identity, dim=teacher.dim)
    summary = extract_regions(dicts, teacher, proposals, store, top_m=2, progress=False)
    assert summary["done"] == 2 and summary["regions"] == 4 and teacher.calls == 2
    for record in dicts:
        image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        got = RegionEmbeddingStore(tmp_path / "regions").get(record["image_id"])
        expected = teacher.embed(image, got["boxes"])
        torch.testing.assert_close(got["embeddings"].float(), expected, atol=1e-3, rtol=0)
    assert store.teacher == "test:mean-colour"


def test_custom_teacher_with_online_targets():
    teacher = MeanColourTeacher()
    rgb = np.random.default_rng(1).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 8.0], [4.0, 4.0, 25.0, 16.0]])  # box 1 spills out
    bgr = torch.from_numpy(rgb[:, :, ::-1].copy()).permute(2, 0, 1)
    online = OnlineRegionTeacher(teacher, input_format="BGR")
    assert online.dim == 4
    (out,) = online([{"image": bgr, "teacher_proposals": boxes}])
    clipped = boxes.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(0, 20)
    torch.testing.assert_close(out, teacher.embed(rgb, clipped))
