"""Proposal loading, RPN proposals, offline extraction (ranks, resume, errors) and its CLI."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import open_clip
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from PIL import Image

from ovdet.cli import main as cli_main
from ovdet.cli.extract_regions import load_dataset_dicts
from ovdet.data.region_store import RegionEmbeddingStore
from ovdet.teacher import CLIPCropTeacher
from ovdet.teacher.extract import extract_regions
from ovdet.teacher.proposals import (
    ModelProposals,
    load_proposals,
    lookup_proposals,
    proposals_from_model,
    select_proposals,
)
from ovdet.utils.io import file_sha256

VISION = dict(image_size=32, layers=1, width=32, head_width=16, patch_size=8)
TEXT = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)
SIZES = [(48, 64), (40, 56), (56, 56)]  # (H, W) of the three images
TOP_M = 3


def tiny_clip() -> CLIP:
    torch.manual_seed(0)
    return CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(**VISION), text_cfg=CLIPTextCfg(**TEXT))


@pytest.fixture(scope="module")
def teacher() -> CLIPCropTeacher:
    return CLIPCropTeacher(
        tiny_clip(), preprocess=open_clip.image_transform(32, is_train=False), device="cpu"
    )


def random_proposals(seed: int, height: int, width: int, n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-4, width - 10, n)
    y0 = rng.uniform(-4, height - 10, n)
    w = rng.uniform(6, 30, n)
    h = rng.uniform(6, 30, n)
    return np.stack([x0, y0, x0 + w, y0 + h, rng.uniform(0, 1, n)], axis=1)


@pytest.fixture()
def dataset(tmp_path):
    """Three PNGs + a COCO json; proposals {image_id: (N, 5)} (some boxes spill out)."""
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    images, proposals = [], {}
    for k, (h, w) in enumerate(SIZES):
        name = f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name)
        images.append({"id": 10 + k, "file_name": name, "height": h, "width": w})
        proposals[10 + k] = random_proposals(k, h, w)
    coco = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    json_file = tmp_path / "coco.json"
    json_file.write_text(json.dumps(coco))
    return {
        "json": json_file,
        "root": root,
        "dicts": load_dataset_dicts(json_file=str(json_file), image_root=str(root)),
        "proposals": proposals,
    }


def make_store(root, teacher, dtype="float32") -> RegionEmbeddingStore:
    return RegionEmbeddingStore(root, teacher="tiny", dim=teacher.dim, dtype=dtype, top_m=TOP_M)


def expected_targets(record, proposals, teacher):
    image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
    p = proposals[record["image_id"]]
    sel = select_proposals(p[:, :4], p[:, 4], top_m=TOP_M, image_size=image.shape[:2])
    return sel, teacher.embed(image, sel["boxes"])


# ---------------------------------------------------------------------------- proposals
def test_load_coco_results_top_m_nms_min_size(tmp_path):
    path = tmp_path / "res.json"
    records = [
        {"image_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5, "category_id": 1},
        {"image_id": 1, "bbox": [1, 1, 10, 10], "score": 0.9, "category_id": 2},  # overlaps #0
        {"image_id": 1, "bbox": [30, 30, 10, 20], "score": 0.7, "category_id": 1},
        {"image_id": 1, "bbox": [50, 50, 2, 2], "score": 0.95, "category_id": 1},  # tiny
        {"image_id": "x", "bbox": [5, 5, 5, 5], "score": 0.1},
    ]
    path.write_text(json.dumps(records))
    out = load_proposals(path)
    assert set(out) == {1, "x"}
    torch.testing.assert_close(out[1]["scores"], torch.tensor([0.95, 0.9, 0.7, 0.5]))
    torch.testing.assert_close(out[1]["boxes"][2], torch.tensor([30.0, 30.0, 40.0, 50.0]))
    out = load_proposals(path, top_m=2, nms_thresh=0.5, min_size=3)
    torch.testing.assert_close(out[1]["scores"], torch.tensor([0.9, 0.7]))  # tiny + dup gone
    torch.testing.assert_close(out[1]["boxes"][0], torch.tensor([1.0, 1.0, 11.0, 11.0]))


def official_mavl_nms(dets, scores, thresh):
    """mmaaz60/mvits_for_class_agnostic_od ``utils/nms.py::nms`` (the NMS of RKD's
    ``tools/get_rkd_clip_feat.py``), as written there."""
    x1 = dets[:, 0]
    y1 = dets[:, 1]
    x2 = dets[:, 2]
    y2 = dets[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        inds = np.where(ovr <= thresh)[0]
        order = order[inds + 1]
    return dets[keep], scores[keep]


def official_rkd_selection(boxes, scores, top_n=5):
    """``get_top_5_class_agnostic_mavl_proposals`` after pooling the queries' candidates:
    ``class_agnostic_nms(all_boxes, all_scores, iou=0.5)``, then the top N by score."""
    boxes, scores = official_mavl_nms(np.array(boxes), np.array(scores), 0.5)
    sorted_ind = np.argsort(-scores)[:top_n]
    return boxes[sorted_ind, :], scores[sorted_ind]


def test_rkd_selection_reproduces_the_official_order():
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(1, 60))
        x0, y0 = rng.integers(0, 90, n), rng.integers(0, 70, n)
        w, h = rng.integers(1, 40, n), rng.integers(1, 40, n)
        boxes = np.stack([x0, y0, np.minimum(x0 + w, 127), np.minimum(y0 + h, 95)], 1)
        boxes = boxes.astype(np.float64)
        scores = rng.permutation(n).astype(np.float64) / n  # distinct: no ties to break
        want_boxes, want_scores = official_rkd_selection(boxes, scores)
        got = select_proposals(
            boxes,
            scores,
            top_m=5,
            nms_thresh=0.5,
            nms_legacy_plus_one=True,
            image_size=(96, 128),
        )
        np.testing.assert_allclose(got["boxes"].numpy(), want_boxes, err_msg=str(trial))
        np.testing.assert_allclose(got["scores"].numpy(), want_scores, rtol=1e-6)
    # the "+1" convention matters for small boxes: IoU 0.5 (kept) vs 0.6 (suppressed)
    pair, pair_scores = np.array([[0.0, 0, 3, 3], [1, 0, 4, 3]]), np.array([0.9, 0.8])
    assert len(official_rkd_selection(pair, pair_scores)[0]) == 1
    assert (
        len(select_proposals(pair, pair_scores, nms_thresh=0.5, nms_legacy_plus_one=True)["boxes"])
        == 1
    )
    assert len(select_proposals(pair, pair_scores, nms_thresh=0.5)["boxes"]) == 2


def test_extract_regions_with_the_rkd_selection(tmp_path, dataset, teacher):
    # pixel-aligned boxes (as MAVL's), distinct scores
    proposals = {
        k: np.concatenate([np.round(v[:, :4]), v[:, 4:]], axis=1)
        for k, v in dataset["proposals"].items()
    }
    store = make_store(tmp_path / "store", teacher)
    extract_regions(
        dataset["dicts"],
        teacher,
        proposals,
        store,
        top_m=5,
        nms_thresh=0.5,
        nms_legacy_plus_one=True,
        progress=False,
    )
    for record in dataset["dicts"]:
        p = proposals[record["image_id"]]
        h, w = record["height"], record["width"]
        clipped = p[:, :4].copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
        want_boxes, want_scores = official_rkd_selection(clipped, p[:, 4])
        stored = store.get(record["image_id"])
        np.testing.assert_allclose(stored["boxes"].numpy(), want_boxes, rtol=1e-6)
        np.testing.assert_allclose(stored["scores"].float().numpy(), want_scores, rtol=1e-3)


def test_load_mapping_and_detectron2_formats(tmp_path):
    path = tmp_path / "props.json"
    path.write_text(json.dumps({"7": [[0, 0, 4, 4, 0.2], [1, 1, 9, 9, 0.8]], "img": []}))
    out = load_proposals(path)
    torch.testing.assert_close(lookup_proposals(out, 7)["scores"], torch.tensor([0.8, 0.2]))
    assert out["img"]["boxes"].shape == (0, 4)
    with pytest.raises(KeyError, match="image id 8"):
        lookup_proposals(out, 8, str(path))

    d2 = {  # detectron2's proposal file: numpy arrays, pickled
        "ids": [3, 4],
        "boxes": [np.array([[0, 0, 5, 5], [2, 2, 8, 3]], np.float32), np.zeros((0, 4))],
        "objectness_logits": [np.array([-1.0, 2.0], np.float32), np.zeros(0)],
        "bbox_mode": 1,  # XYWH_ABS
    }
    (tmp_path / "props.pkl").write_bytes(pickle.dumps(d2))
    as_tensors = {**d2, "boxes": [torch.as_tensor(b) for b in d2["boxes"]]}
    as_tensors["objectness_logits"] = [torch.as_tensor(x) for x in d2["objectness_logits"]]
    torch.save(as_tensors, tmp_path / "props.pt")  # read with weights_only=True
    for name in ("props.pkl", "props.pt"):
        out = load_proposals(tmp_path / name)
        expected = torch.tensor([[2.0, 2, 10, 5], [0, 0, 5, 5]])
        torch.testing.assert_close(out[3]["boxes"], expected)
        torch.testing.assert_close(out[3]["scores"], torch.tensor([2.0, -1.0]).sigmoid())
        assert out[4]["boxes"].shape == (0, 4)


@pytest.mark.parametrize(
    "content, message",
    [
        ([{"image_id": 1, "bbox": [0, 0, 1, 1]}], r"entry 0: field 'score' is missing"),
        ([{"image_id": 1, "bbox": [0, 0, 1], "score": 1}], r"entry 0: field 'bbox' must be"),
        (
            [{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 1}, {"image_id": 2.5, "bbox": []}],
            r"entry 1: field 'score' is missing",
        ),
        (
            [{"image_id": 2.5, "bbox": [0, 0, 1, 1], "score": 1}],
            r"entry 0: field 'image_id': image id must be an int or a str",
        ),
        ([{"image_id": 1, "bbox": [0, 0, -1, 1], "score": 1}], r"negative width"),
        ([{"image_id": 1, "bbox": [0, 0, 1, "a"], "score": 1}], r"'bbox' must be a number"),
        ({"3": [[5, 0, 1, 1, 0.5]]}, r"entry '3', row 0: .* x1 < x0"),
        ({"3": [[0, 0, 1]]}, r"entry '3': proposals must be rows"),
        (3, r"expected a list"),
    ],
)
def test_load_proposals_errors_name_file_entry_field(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message) as info:
        load_proposals(path)
    assert "bad.json" in str(info.value)


def test_load_proposals_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_proposals(tmp_path / "nope.json")
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown proposals file type"):
        load_proposals(tmp_path / "p.txt")
    (tmp_path / "p.json").write_text("[{")
    with pytest.raises(ValueError, match="p.json: not valid JSON"):
        load_proposals(tmp_path / "p.json")


def tiny_rpn_cfg():
    """ResNet-18 FPN GeneralizedRCNN, BN, narrow FPN: a tiny detectron2 model for 64 px images."""
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8], [16], [32], [64], [128]]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 1
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 16
    return cfg


def tiny_rpn_model(cfg=None):
    torch.manual_seed(0)
    return build_model(cfg or tiny_rpn_cfg())


def test_proposals_from_model_rescales_to_original_pixels(dataset):
    model = tiny_rpn_model()
    resize = T.ResizeShortestEdge(80, 1000)
    out = proposals_from_model(model, dataset["dicts"], 5, augmentations=[resize])
    assert set(out) == {10, 11, 12}
    # reference: run the model on the image resized by hand, scale the boxes back down
    plain = ModelProposals(model, top_m=5)
    for record, (h, w) in zip(dataset["dicts"], SIZES):
        props = out[record["image_id"]]
        assert props["boxes"].shape == (5, 4)
        assert torch.all(props["scores"][:-1] >= props["scores"][1:])
        assert props["boxes"][:, 0::2].max() <= w and props["boxes"][:, 1::2].max() <= h
        image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        resized = resize.get_transform(image).apply_image(image)
        ref = plain({}, resized)
        ratio = torch.tensor([w / resized.shape[1], h / resized.shape[0]] * 2)
        torch.testing.assert_close(props["boxes"], ref["boxes"] * ratio)
        torch.testing.assert_close(props["scores"], ref["scores"])
    # batches run too (images padded together, as in detectron2, so values may differ slightly)
    batched = proposals_from_model(model, dataset["dicts"], 5, augmentations=[resize], batch_size=2)
    for record, (h, w) in zip(dataset["dicts"], SIZES):
        boxes = batched[record["image_id"]]["boxes"]
        assert boxes.shape == (5, 4) and boxes[:, 2].max() <= w and boxes[:, 3].max() <= h


# ---------------------------------------------------------------------------- extraction
def test_extract_matches_teacher_embed(dataset, teacher, tmp_path):
    store = make_store(tmp_path / "store", teacher)
    summary = extract_regions(
        dataset["dicts"], teacher, dataset["proposals"], store, TOP_M, progress=False
    )
    assert summary["done"] == 3 and summary["failed"] == 0 and summary["regions"] == 9
    reader = RegionEmbeddingStore(tmp_path / "store")
    for record in dataset["dicts"]:
        sel, emb = expected_targets(record, dataset["proposals"], teacher)
        got = reader.get(record["image_id"])
        torch.testing.assert_close(got["boxes"], sel["boxes"])
        torch.testing.assert_close(got["scores"], sel["scores"])
        torch.testing.assert_close(got["embeddings"], emb)
        assert got["boxes"].min() >= 0  # clipped to the image
    # running again skips everything
    again = extract_regions(
        dataset["dicts"], teacher, dataset["proposals"], store, TOP_M, progress=False
    )
    assert again["skipped"] == 3 and again["done"] == 0
    wrong_dim = RegionEmbeddingStore(tmp_path / "other", teacher="tiny", dim=16)
    with pytest.raises(ValueError, match="D=32 but region store .* D=16"):
        extract_regions(dataset["dicts"], teacher, dataset["proposals"], wrong_dim, TOP_M)


def test_missing_and_corrupt_images_are_reported_and_skipped(dataset, teacher, tmp_path):
    (dataset["root"] / "corrupt.png").write_bytes(b"not a png")
    extra = [
        {"image_id": 20, "file_name": str(dataset["root"] / "gone.png")},
        {"image_id": 21, "file_name": str(dataset["root"] / "corrupt.png")},
        {"image_id": 22, "file_name": dataset["dicts"][0]["file_name"]},  # no proposals
    ]
    proposals = {**dataset["proposals"], 20: np.zeros((0, 5)), 21: np.zeros((0, 5))}
    store = make_store(tmp_path / "store", teacher)
    summary = extract_regions(
        dataset["dicts"] + extra, teacher, proposals, store, TOP_M, progress=False
    )
    assert summary["done"] == 3 and summary["failed"] == 3
    errors = json.loads((tmp_path / "store" / "errors-rank0.json").read_text())["errors"]
    assert [e["image_id"] for e in errors] == [20, 21, 22]
    assert errors[0]["file_name"].endswith("gone.png") and "FileNotFoundError" in errors[0]["error"]
    assert "no proposals for image id 22" in errors[2]["error"]
    assert RegionEmbeddingStore(tmp_path / "store").done_ids() == {10, 11, 12}
    with pytest.raises(ValueError, match="no dataset image id has proposals"):
        extract_regions(dataset["dicts"], teacher, {99: np.zeros((0, 5))}, store, TOP_M)


def test_two_ranks_cover_all_images(dataset, teacher, tmp_path):
    for rank in (0, 1):
        store = make_store(tmp_path / "store", teacher)
        summary = extract_regions(
            dataset["dicts"],
            teacher,
            dataset["proposals"],
            store,
            TOP_M,
            rank=rank,
            world_size=2,
            progress=False,
        )
        assert summary["images"] == (2 if rank == 0 else 1) and summary["done"] == summary["images"]
    index0 = (tmp_path / "store" / "index-rank0.jsonl").read_text()
    index1 = (tmp_path / "store" / "index-rank1.jsonl").read_text()
    assert json.loads(index0)["ids"] == [10, 12] and json.loads(index1)["ids"] == [11]
    reader = RegionEmbeddingStore(tmp_path / "store")
    assert reader.done_ids() == {10, 11, 12}
    for record in dataset["dicts"]:
        _, emb = expected_targets(record, dataset["proposals"], teacher)
        torch.testing.assert_close(reader.get(record["image_id"])["embeddings"], emb)


def test_extract_resumes_after_crash(dataset, teacher, tmp_path):
    calls = []

    def crashing(record, image):
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        calls.append(record["image_id"])
        return dataset["proposals"][record["image_id"]]

    store = make_store(tmp_path / "store", teacher, dtype="float16")
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_regions(dataset["dicts"], teacher, crashing, store, TOP_M, shard_size=1)
    (tmp_path / "store" / "shards" / ".r0-000002.safetensors.a1b2c3.tmp").write_bytes(b"partial")
    assert RegionEmbeddingStore(tmp_path / "store").done_ids() == {10, 11}

    resumed = make_store(tmp_path / "store", teacher, dtype="float16")
    summary = extract_regions(
        dataset["dicts"], teacher, dataset["proposals"], resumed, TOP_M, progress=False
    )
    assert summary["skipped"] == 2 and summary["done"] == 1
    reference = make_store(tmp_path / "ref", teacher, dtype="float16")
    extract_regions(dataset["dicts"], teacher, dataset["proposals"], reference, TOP_M)
    final = RegionEmbeddingStore(tmp_path / "store")
    assert len(final) == 3 and not list((tmp_path / "store" / "shards").glob(".*"))
    for image_id in (10, 11, 12):
        torch.testing.assert_close(
            final.get(image_id)["embeddings"], reference.get(image_id)["embeddings"]
        )


def test_cli_custom_config_teacher(dataset, tmp_path, capsys):
    config = {"embed_dim": 32, "vision_cfg": VISION, "text_cfg": TEXT}
    config_path = tmp_path / "ovdet-test-tiny-clip.json"
    config_path.write_text(json.dumps(config))
    checkpoint = tmp_path / "teacher.pt"
    torch.save(tiny_clip().state_dict(), checkpoint)
    results = [
        {"image_id": image_id, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": s}
        for image_id, rows in dataset["proposals"].items()
        for x0, y0, x1, y1, s in rows.tolist()
    ]
    proposals_path = tmp_path / "proposals.json"
    proposals_path.write_text(json.dumps(results))
    out = tmp_path / "regions"
    argv = [
        "extract-regions",
        "--teacher", str(checkpoint),
        "--teacher-model", str(config_path),
        "--json", str(dataset["json"]),
        "--image-root", str(dataset["root"]),
        "--proposals", str(proposals_path),
        "--out", str(out),
        "--top-m", str(TOP_M),
        "--device", "cpu",
        "--shard-size", "2",
        "--no-progress",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["done"] == 3 and summary["failed"] == 0 and summary["regions"] == 9

    store = RegionEmbeddingStore(out)
    meta = store.metadata
    assert meta["teacher"].startswith("open_clip:ovdet-test-tiny-clip[config-sha256=")
    # the identity recorded since the first stores: architecture, weights, then the mode
    assert meta["teacher"].endswith(f":sha256={file_sha256(checkpoint)[:16]}:crop-pil")
    assert meta["dtype"] == "float16" and meta["scales"] == [1.0, 1.5] and meta["top_m"] == 3
    model = open_clip.create_model("ovdet-test-tiny-clip", pretrained=str(checkpoint))
    cli_teacher = CLIPCropTeacher(model, device="cpu")
    for record in dataset["dicts"]:
        sel, emb = expected_targets(record, dataset["proposals"], cli_teacher)
        got = store.get(record["image_id"])
        torch.testing.assert_close(got["boxes"], sel["boxes"])
        torch.testing.assert_close(got["embeddings"], emb.half())

    # resume: nothing left to do; another teacher's weights are refused, naming both
    assert cli_main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 3
    torch.manual_seed(1)
    other = CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(**VISION), text_cfg=CLIPTextCfg(**TEXT))
    torch.save(other.state_dict(), tmp_path / "other.pt")
    argv[argv.index(str(checkpoint))] = str(tmp_path / "other.pt")
    capsys.readouterr()
    assert cli_main(argv) == 2  # one line on stderr, no traceback
    err = capsys.readouterr().err
    assert re.search("was made with teacher='open_clip.*but teacher=", err), err
    assert "Traceback" not in err


def test_cli_rpn_proposals_from_yaml_config(dataset, tmp_path, capsys):
    cfg = tiny_rpn_cfg()
    cfg.INPUT.MIN_SIZE_TEST = 64
    model = tiny_rpn_model(cfg)
    cfg_path = tmp_path / "rpn.yaml"
    cfg_path.write_text(cfg.dump())
    torch.save({"model": model.state_dict()}, tmp_path / "rpn.pth")
    checkpoint = tmp_path / "teacher.pt"
    torch.save(tiny_clip().state_dict(), checkpoint)
    config_path = tmp_path / "ovdet-test-tiny-clip.json"
    config_path.write_text(json.dumps({"embed_dim": 32, "vision_cfg": VISION, "text_cfg": TEXT}))
    out = tmp_path / "regions"
    argv = [
        "extract-regions",
        "--teacher", str(checkpoint),
        "--teacher-model", str(config_path),
        "--json", str(dataset["json"]),
        "--image-root", str(dataset["root"]),
        "--config", str(cfg_path),
        "--weights", str(tmp_path / "rpn.pth"),
        "--out", str(out),
        "--top-m", "4",
        "--device", "cpu",
        "--dtype", "float32",
        "--rank", "1",
        "--world-size", "2",
        "--no-progress",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 1 and summary["done"] == 1 and summary["regions"] == 4
    store = RegionEmbeddingStore(out)
    assert store.metadata["proposals"].startswith(f"rpn:{cfg_path.resolve()}:weights-sha256=")
    # the stored boxes are the RPN's (same model, same test resize), in original pixels
    record = dataset["dicts"][1]
    image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
    ref = ModelProposals(model, augmentations=[T.ResizeShortestEdge([64, 64], 1333)], top_m=4)
    expected = ref(record, image)
    torch.testing.assert_close(store.get(record["image_id"])["boxes"], expected["boxes"])
    torch.testing.assert_close(store.get(record["image_id"])["scores"], expected["scores"])
