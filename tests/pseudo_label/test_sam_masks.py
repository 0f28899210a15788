"""``--sam``: the kept pseudo-boxes get SAM's masks (RLE that pycocotools decodes to the masks
SAM gives for the written boxes), SAM is part of the run's settings, bad specs are refused."""

from __future__ import annotations

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from ovdet.modeling.sam import BoxPromptedSAM, build_small_sam
from ovdet.pseudo_label import run_pseudo_label
from ovdet.utils.errors import InputError

from .conftest import FakeTeacher, write_images


@pytest.fixture(scope="module")
def sam_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "small_sam.pth"
    torch.save(build_small_sam().state_dict(), path)
    return path


def _run(tmp_path, images, out, spec, **kwargs):
    return run_pseudo_label(
        output=tmp_path / out,
        inputs=[str(p) for p in images],
        teacher=FakeTeacher(),
        score_thresh=0.25,
        progress=False,
        sam=spec,
        **kwargs,
    )


def test_kept_boxes_get_sam_masks(tmp_path, sam_checkpoint):
    images = write_images(tmp_path / "images", 3)
    _run(tmp_path, images, "pl", f"small:{sam_checkpoint}")
    data = json.loads((tmp_path / "pl" / "pseudo_labels.json").read_text())
    run = json.loads((tmp_path / "pl" / "run.json").read_text())
    assert run["settings"]["sam"]["type"] == "small"
    sam = BoxPromptedSAM(build_small_sam(checkpoint=sam_checkpoint), device="cpu")
    assert data["annotations"]
    for img in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
        arr = np.asarray(Image.open(img["file_name"]).convert("RGB"))
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float64)
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
        expected = sam.predict(arr, boxes)
        for k, ann in enumerate(anns):
            decoded = mask_util.decode(ann["segmentation"]).astype(bool)
            assert decoded.shape == arr.shape[:2]
            # the written boxes are rounded: allow a few pixels of difference
            assert (decoded != expected.masks[k].numpy()).sum() <= 0.01 * decoded.size
            assert ann["area"] == float(decoded.sum())
            assert ann["mask_score"] == pytest.approx(float(expected.iou[k]), abs=1e-4)


def test_another_sam_is_refused_on_resume(tmp_path, sam_checkpoint):
    images = write_images(tmp_path / "images", 2)
    _run(tmp_path, images, "pl", f"small:{sam_checkpoint}")
    with pytest.raises(InputError, match="sam"):
        _run(tmp_path, images, "pl", None)


@pytest.mark.parametrize(
    "spec, message",
    [("vit_q:x.pth", "vit_q"), ("small:missing.pth", "missing.pth")],
)
def test_bad_sam_spec_refused_before_any_image(tmp_path, spec, message):
    images = write_images(tmp_path / "images", 1)
    with pytest.raises((InputError, FileNotFoundError), match=message):
        _run(tmp_path, images, "pl", spec)
    assert not (tmp_path / "pl" / "run.json").exists()
