"""BoxPromptedSAM: parity with SamPredictor box by box, chunking, empty / border /
degenerate boxes, inputs, and masks_for_detections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from detectron2.structures import Boxes, Instances
from segment_anything import SamPredictor

from ovdet.modeling.sam import BoxPromptedSAM, clip_boxes, masks_for_detections
from ovdet.utils.errors import InputError


def test_batched_equals_sam_predictor_box_by_box(small_sam, boxed, photo, boxes):
    out = boxed.predict(photo, boxes, return_low_res=True, return_logits=True)
    h, w = photo.shape[:2]
    assert out.masks.shape == (5, h, w) and out.masks.dtype == torch.bool
    assert out.iou.shape == (5,) and out.low_res_logits.shape == (5, 64, 64)
    reference = SamPredictor(small_sam)
    reference.set_image(photo)
    for i, box in enumerate(boxes):
        logits, iou, low = reference.predict(box=box, multimask_output=False, return_logits=True)
        np.testing.assert_allclose(out.low_res_logits[i].numpy(), low[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(out.logits[i].numpy(), logits[0], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(out.masks[i].numpy(), logits[0] > 0)
        assert out.iou[i].item() == pytest.approx(float(iou[0]), abs=1e-5)
    assert out.masks.any()  # something to compare


def test_chunked_equals_unchunked_and_embedding_reused(small_sam, boxed, photo, boxes):
    whole = BoxPromptedSAM(small_sam, chunk_size=64).predict(photo, boxes, return_low_res=True)
    for chunk in (1, 2):
        part = BoxPromptedSAM(small_sam, chunk_size=chunk).predict(
            photo, boxes, return_low_res=True
        )
        torch.testing.assert_close(part.low_res_logits, whole.low_res_logits, atol=1e-5, rtol=0)
        assert torch.equal(part.masks, whole.masks)
    embedding = boxed.embed(photo)
    a = boxed.predict_embedded(embedding, boxes[:2])
    b = boxed.predict_embedded(embedding, boxes[2:])
    assert torch.equal(torch.cat([a.masks, b.masks]), whole.masks)


def test_empty_boxes_give_empty_outputs(boxed, photo):
    h, w = photo.shape[:2]
    for empty in (np.zeros((0, 4)), [], torch.zeros((0, 4))):
        out = boxed.predict(photo, empty, return_low_res=True, return_logits=True)
        assert out.masks.shape == (0, h, w) and out.masks.dtype == torch.bool
        assert out.iou.shape == (0,)
        assert out.low_res_logits.shape == (0, 64, 64) and out.logits.shape == (0, h, w)


def test_border_and_degenerate_boxes_are_clipped(boxed, photo):
    h, w = photo.shape[:2]
    beyond = np.array([[-40, -10, 120, 90], [w - 30, h - 20, w + 500, h + 80]], float)
    clipped = clip_boxes(beyond, h, w)
    np.testing.assert_array_equal(clipped, [[0, 0, 120, 90], [w - 30, h - 20, w, h]])
    assert torch.equal(boxed.predict(photo, beyond).masks, boxed.predict(photo, clipped).masks)
    swapped = np.array([[120, 90, 10, 20]], float)  # corners in the wrong order
    ordered = np.array([[10, 20, 120, 90]], float)
    assert torch.equal(boxed.predict(photo, swapped).masks, boxed.predict(photo, ordered).masks)
    degenerate = np.array([[50, 60, 50, 90], [10, 70, 40, 70], [w + 5, 5, w + 9, 9]], float)
    out = boxed.predict(photo, degenerate)
    assert out.masks.shape == (3, h, w) and torch.isfinite(out.iou).all()


def test_image_and_box_inputs(boxed, photo, boxes):
    ref = boxed.predict(photo, boxes[:2]).masks
    as_tensor = boxed.predict(torch.from_numpy(photo.copy()), torch.tensor(boxes[:2]))
    assert torch.equal(as_tensor.masks, ref)
    assert torch.equal(boxed.predict(photo, Boxes(torch.tensor(boxes[:2]))).masks, ref)
    assert torch.equal(boxed.predict(photo, boxes[0]).masks, ref[:1])  # one box, (4,)
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        boxed.predict(photo, np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        boxed.predict(photo, [[0, 0, float("nan"), 5]])
    with pytest.raises(InputError, match="chunk_size"):
        BoxPromptedSAM(boxed.sam, chunk_size=0)


def test_masks_for_detections_fills_instances_and_dicts(boxed, photo, boxes):
    h, w = photo.shape[:2]
    ref = boxed.predict(photo, boxes)
    inst = Instances((h, w))
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    inst.scores = torch.ones(len(boxes))
    inst = masks_for_detections(boxed, photo, inst)
    assert inst.pred_masks.shape == (5, h, w) and inst.pred_masks.dtype == torch.bool
    assert inst.mask_scores.shape == (5,)
    assert (inst.pred_masks != ref.masks).float().mean() < 1e-3  # float32 boxes
    det = {"boxes": boxes, "scores": np.ones(5), "masks": "the detector's"}
    out = masks_for_detections(boxed, photo, det)
    assert det["masks"] == "the detector's"  # a new dict
    assert out["masks"].dtype == bool and np.array_equal(out["masks"], ref.masks.numpy())
    assert out["mask_scores"].dtype == np.float32 and out["scores"] is det["scores"]
    bare = masks_for_detections(boxed.sam, photo, det)  # a Sam, wrapped
    assert np.array_equal(bare["masks"], out["masks"])
    empty = masks_for_detections(boxed, photo, {"boxes": np.zeros((0, 4), np.float32)})
    assert empty["masks"].shape == (0, h, w) and empty["mask_scores"].shape == (0,)
    with pytest.raises(TypeError, match="Instances"):
        masks_for_detections(boxed, photo, [boxes])
