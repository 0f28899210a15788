"""SAM as the mask head of any detector (a config choice): with_sam_masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import instantiate
from PIL import Image

from ovdet.modeling.sam import BoxPromptedSAM, build_small_sam, masks_for_detections, with_sam_masks


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    return BoxPromptedSAM(build_small_sam())


def _model(tiny_fpn_config, build_model):
    torch.manual_seed(0)
    return build_model(tiny_fpn_config(torch.randn(3, 8))).eval()


def test_eval_masks_are_sams_of_the_final_boxes(tiny_fpn_config, build_model, sam, tmp_path):
    rgb = (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "im.png")
    bgr = torch.as_tensor(rgb[:, :, ::-1].copy()).permute(2, 0, 1).float()
    plain = _model(tiny_fpn_config, build_model)
    keys = set(plain.state_dict())
    item = {"image": bgr, "height": 64, "width": 80, "file_name": str(tmp_path / "im.png")}
    with torch.no_grad():
        want = plain([item])[0]["instances"]
    assert len(want) > 0
    model = with_sam_masks(_model(tiny_fpn_config, build_model), sam)
    assert set(model.state_dict()) == keys  # SAM's weights are not the detector's
    with torch.no_grad():
        got = model([item])[0]["instances"]
    torch.testing.assert_close(got.pred_boxes.tensor, want.pred_boxes.tensor)
    ref = masks_for_detections(sam, rgb, want)
    assert got.pred_masks.shape == (len(want), 64, 80) and got.pred_masks.dtype == torch.bool
    assert torch.equal(got.pred_masks, ref.pred_masks)
    torch.testing.assert_close(got.mask_scores, ref.mask_scores)
    # without a file: the input tensor (BGR) is the image
    del item["file_name"]
    with torch.no_grad():
        again = model([item])[0]["instances"]
    assert torch.equal(again.pred_masks, ref.pred_masks)


def test_resized_input_is_brought_to_the_original_size(sam):
    from ovdet.modeling.sam import SAMMaskSource

    source = SAMMaskSource(sam, input_format="RGB")
    image = torch.zeros(3, 32, 40)
    image[0] = 255
    out = source.image_of({"image": image, "height": 64, "width": 80})
    assert out.shape == (64, 80, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


def test_training_is_untouched_and_config_builds(tiny_fpn_config, make_batch, sam):
    cfg = tiny_fpn_config(torch.randn(3, 8))
    cfg.model = L(with_sam_masks)(model=cfg.model, sam=sam)
    from detectron2.utils.events import EventStorage

    model = instantiate(cfg.model).train()
    with EventStorage():
        losses = model(make_batch(3))
    assert "loss_mask" in losses  # the detector's own mask head still trains


def test_no_detections_give_empty_masks(tiny_fpn_config, build_model, sam):
    model = with_sam_masks(_model(tiny_fpn_config, build_model), sam)
    model.roi_heads.box_predictor.test_score_thresh = 1.1  # nothing passes
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 64, 64), "height": 64, "width": 64}])[0]
    assert out["instances"].pred_masks.shape == (0, 64, 64)


def test_bad_spec_fails_when_built(tiny_fpn_config, build_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="--sam"):
        with_sam_masks(_model(tiny_fpn_config, build_model), str(tmp_path / "missing.pth"))
