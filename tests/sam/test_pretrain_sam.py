"""``ovdet pretrain-sam``: the small SAM trained on the base-class masks of a tiny OV-Shapes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ovdet.cli import main as ovdet_main
from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes
from ovdet.modeling.sam import build_small_sam, sam_from_spec
from ovdet.modeling.sam.pretrain import (
    SamMaskDataset,
    SamPretrainConfig,
    mask_iou,
    mean_iou_by_split,
    read_masked_images,
    resolve_sam_data,
    sam_losses,
)
from ovdet.modeling.sam.pretrain.data import jitter_boxes, low_res_target

TRAIN = ["--epochs", "2", "--batch-size", "2", "--threads", "1", "--warmup-steps", "1"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """4 train + 2 val OV-Shapes images of 64 px (COCO RLE masks, base / novel split)."""
    root = tmp_path_factory.mktemp("sam_shapes")
    generate_ov_shapes(
        root, num_train=4, num_val=2, seed=1, config=OVShapesConfig(image_size=64), progress=False
    )
    return root


def _run(capsys, *argv) -> tuple[int, str]:
    rc = ovdet_main(["pretrain-sam", *map(str, argv)])
    return rc, capsys.readouterr().err


def test_mask_iou_on_hand_made_masks():
    gt = np.zeros((4, 4, 4), dtype=bool)
    pred = np.zeros((4, 4, 4), dtype=bool)
    gt[0, :2, :2] = True  # 4 pixels; the prediction adds 2 -> 4 / 6
    pred[0, :2, :3] = True
    gt[1, 0, 0], pred[1, 3, 3] = True, True  # disjoint -> 0
    gt[3, 1:3, 1:3] = True  # [2]: both empty -> 1; [3]: nothing predicted -> 0
    np.testing.assert_allclose(mask_iou(pred, gt), [4 / 6, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(mask_iou(gt.astype(np.uint8), torch.from_numpy(gt)), 1.0)
    with pytest.raises(ValueError, match="shapes"):
        mask_iou(pred[:2], gt)
    split = mean_iou_by_split([1.0, 0.5, 0.0, 0.25], ["a", "b", "c", "c"], novel=["c"])
    assert split["miou_base"] == 0.75 and split["num_base"] == 2
    assert split["miou_novel"] == 0.125 and split["num_novel"] == 2
    assert split["miou_all"] == pytest.approx(0.4375)
    assert mean_iou_by_split([0.5], ["a"], novel=["c"])["miou_novel"] is None


def test_sam_losses():
    target = torch.zeros((2, 8, 8))
    target[:, 2:6, 2:6] = 1
    good = (target * 2 - 1) * 20  # confident and right: mask IoU 1
    iou_pred = torch.tensor([1.0, 0.5])
    right = sam_losses(good, iou_pred, target, SamPretrainConfig())
    assert right["focal"] < 1e-6 and right["dice"] < 0.02
    assert right["iou_mse"].item() == pytest.approx(0.125)  # (0 ** 2 + 0.5 ** 2) / 2
    wrong = sam_losses(-good, iou_pred, target, SamPretrainConfig())
    assert wrong["iou_mse"].item() == pytest.approx(0.625)  # actual IoU 0
    assert wrong["loss"] > right["loss"] + 1
    assert torch.isclose(wrong["loss"], 20 * wrong["focal"] + wrong["dice"] + wrong["iou_mse"])


def test_samples_base_only_jittered_low_res(shapes):
    data = resolve_sam_data(shapes)
    assert data.train_json.name == "train_base.json" and data.novel
    images = read_masked_images(data.train_json, [shapes / "images" / "train"], classes=data.base)
    assert images and all(c not in data.novel for r in images for c in r.classes)
    ds = SamMaskDataset(images, 256, max_boxes=2, seed=3)
    item = ds[0]
    k = min(2, len(images[0].boxes))
    assert item["image"].shape == (3, 256, 256) and item["image"].dtype == torch.uint8
    assert item["boxes"].shape == (k, 4) and item["target"].shape == (k, 64, 64)
    assert 0 <= item["boxes"].min() and item["boxes"].max() <= 256
    assert set(item["target"].unique().tolist()) <= {0.0, 1.0} and item["target"].sum() > 0
    assert torch.equal(ds[0]["boxes"], item["boxes"])  # a function of (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["boxes"], item["boxes"])
    # jitter: 10 % of the side, at most 20 px, clipped to the image
    boxes = np.array([[10.0, 10.0, 50.0, 30.0], [0.0, 0.0, 64.0, 64.0]])
    moved = jitter_boxes(boxes, 64, 64, torch.Generator().manual_seed(0), max_px=3)
    assert np.abs(moved - boxes).max() <= 3 and moved.min() >= 0 and moved.max() <= 64
    # a mask over the left half of a 2:1 image -> the top-left quarter of the padded grid
    mask = torch.zeros((1, 32, 64), dtype=torch.bool)
    mask[:, :, :32] = True
    target = low_res_target(mask, (128, 256), 256)
    assert target.shape == (1, 64, 64) and target[0, :32, :32].all()
    assert target.sum() == 32 * 32


def test_resume_is_bit_identical_and_weights_load(shapes, tmp_path, capsys):
    full, split = tmp_path / "full", tmp_path / "split"
    rc, err = _run(capsys, "--data", shapes, "--out", full, *TRAIN)
    assert rc == 0, err
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["finished"] and metrics["steps"] == 4 and metrics["epochs_done"] == 2
    for key in ("eval", "eval_random"):
        assert {"miou_base", "miou_novel", "num_base", "num_novel"} <= set(metrics[key])
    assert (full / "checkpoint.pth").is_file()

    rc, err = _run(capsys, "--data", shapes, "--out", split, *TRAIN, "--stop-after-epochs", 1)
    assert rc == 0, err
    assert (split / "checkpoint.pth").is_file() and not (split / "sam_small.pth").exists()
    assert torch.load(split / "checkpoint.pth", weights_only=True)["epoch"] == 1
    rc, err = _run(capsys, "--data", shapes, "--out", split, *TRAIN)
    assert rc == 2 and "--resume" in err  # an existing run is not overwritten
    rc, err = _run(capsys, "--data", shapes, "--out", split, *TRAIN[:-1], "5", "--resume")
    assert rc == 2 and "warmup_steps 1 -> 5" in err  # other settings are refused
    rc, err = _run(capsys, "--data", shapes, "--out", split, *TRAIN, "--resume")
    assert rc == 0, err

    a = torch.load(full / "sam_small.pth", weights_only=True)
    b = torch.load(split / "sam_small.pth", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sam, identity = sam_from_spec(f"small:{full / 'sam_small.pth'}")
    assert identity["type"] == "small"
    assert all(torch.equal(v, a[k]) for k, v in sam.state_dict().items())
    loaded = build_small_sam(checkpoint=full / "sam_small.pth").state_dict()
    assert all(torch.equal(loaded[k], a[k]) for k in a)
    torch.manual_seed(0)
    assert not torch.equal(build_small_sam().state_dict()[next(iter(a))], a[next(iter(a))])


def test_refuses_missing_data_and_datasets_without_masks(shapes, tmp_path, capsys):
    rc, err = _run(capsys, "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert rc == 2 and "nowhere: no such folder" in err and "ovdet data ov-shapes" in err
    rc, err = _run(capsys, "--data", tmp_path, "--out", tmp_path / "o")
    assert rc == 2 and "no train_base.json or train.json" in err

    bare = tmp_path / "bare"
    shutil.copytree(shapes / "images", bare / "images")
    coco = json.loads((shapes / "train_base.json").read_text())
    for ann in coco["annotations"]:
        del ann["segmentation"]
    (bare / "train_base.json").write_text(json.dumps(coco))
    rc, err = _run(capsys, "--data", bare, "--out", tmp_path / "o", *TRAIN)
    assert rc == 2 and "has no 'segmentation'" in err and "instance masks" in err
    rc, err = _run(capsys, "--data", shapes, "--out", tmp_path / "o", "--resume")
    assert rc == 2 and "no checkpoint" in err
    assert not (tmp_path / "o").exists()
