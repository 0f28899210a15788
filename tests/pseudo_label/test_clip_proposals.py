"""The "CLIP on proposals" teacher: its score on small tensors and a tiny run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ovdet.pseudo_label.clip_proposals import CLIPProposalTeacher
from ovdet.utils.errors import InputError


class FakeProposals:
    def batch(self, images):
        return [
            {"boxes": np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32),
             "scores": np.array([0.9, 0.8, 0.25], np.float32)}
            for _ in images
        ]  # fmt: skip


class FakeRegion:
    dim = 2

    def embed(self, image, boxes):
        # box 0 and 1 look like class 0, box 2 like class 1
        return torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])[: len(boxes)]


def teacher(**kw):
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    opts = {"temperature": 0.5, "objectness_weight": 0.0, "nms": 0.5, **kw}
    return CLIPProposalTeacher(FakeProposals(), FakeRegion(), text, ["a", "b"], **opts)


def test_score_is_clip_softmax_times_objectness_power():
    t = teacher(objectness_weight=0.5)
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised inside
    obj = torch.tensor([0.81, 0.04])
    p = torch.softmax(torch.tensor([[1.0, 0.0], [0.0, 1.0]]) / 0.5, dim=1)
    want = p.sqrt() * obj.sqrt()[:, None]
    assert torch.allclose(t.score(emb, obj), want, atol=1e-6)
    assert torch.allclose(teacher().score(emb, obj), p, atol=1e-6)  # w = 0: CLIP alone


def test_label_keeps_best_class_and_runs_per_class_nms():
    (det,) = teacher().label([np.zeros((32, 32, 3), np.uint8)])
    # boxes 0 and 1 overlap (IoU 0.81), same class: NMS keeps box 0
    assert det["boxes"].tolist() == [[0, 0, 10, 10], [20, 20, 30, 30]]
    assert det["labels"].tolist() == [0, 1]
    p = torch.softmax(torch.tensor([1.0, 0.0]) / 0.5, dim=0)[0].item()
    assert det["scores"] == pytest.approx([p, p], abs=1e-6)


def test_refusals():
    with pytest.raises(InputError, match="dimension 3 but the CLIP image tower gives 2"):
        CLIPProposalTeacher(FakeProposals(), FakeRegion(), torch.ones(2, 3), ["a", "b"],
                            temperature=0.1)  # fmt: skip
    with pytest.raises(InputError, match="3 class embeddings|\\(3, 2\\) class embeddings"):
        CLIPProposalTeacher(FakeProposals(), FakeRegion(), torch.ones(3, 2), ["a", "b"],
                            temperature=0.1)  # fmt: skip
    with pytest.raises(InputError, match="objectness weight must be in"):
        teacher(objectness_weight=1.5)


def test_pseudo_label_with_clip_end_to_end(tmp_path, tiny_fpn_config, shapes):
    """A random tiny detector's RPN + a random small CLIP label OV-Shapes images."""
    from detectron2.config import instantiate

    from ovdet.pseudo_label import run_pseudo_label
    from ovdet.teacher.small_clip import create_small_clip, save_small_clip
    from ovdet.text import save_class_embeddings

    clip = create_small_clip(image_size=32)
    ckpt, _ = save_small_clip(clip, tmp_path / "clip.pt")
    names = ["red circle", "blue star", "green square"]
    dim = int(clip.model.text_projection.shape[1])
    save_class_embeddings(tmp_path / "emb.pt", torch.randn(3, dim), names)
    cfg = tiny_fpn_config(torch.randn(3, 8))
    from detectron2.config import LazyConfig

    LazyConfig.save(cfg, str(tmp_path / "det.yaml"))
    weights = tmp_path / "det.pth"
    torch.save({"model": instantiate(cfg.model).state_dict()}, weights)
    out = run_pseudo_label(
        output=tmp_path / "pl",
        inputs=[str(shapes / "images" / "s0.png"), str(shapes / "images" / "s1.png")],
        config=tmp_path / "det.yaml",
        weights=weights,
        clip=ckpt,
        embeddings=str(tmp_path / "emb.pt"),
        top_proposals=5,
        score_thresh=0.0,
        progress=False,
        device="cpu",
    )
    assert out["images"] == 2 and out["failed"] == 0
    data = json.loads((tmp_path / "pl" / "pseudo_labels.json").read_text())
    assert [c["name"] for c in data["categories"]] == names
    assert 0 < len(data["annotations"]) <= 2 * 5
    manifest = json.loads((tmp_path / "pl" / "run.json").read_text())
    assert manifest["settings"]["model"]["name"] == "clip-proposals"
    with pytest.raises(InputError, match="--model, --vocab and --vocab-file do not apply"):
        run_pseudo_label(output=tmp_path / "pl2", inputs=[str(shapes / "images" / "s0.png")],
                         config=tmp_path / "det.yaml", weights=weights, clip=ckpt,
                         vocab="cat,dog")  # fmt: skip
