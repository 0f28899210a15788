"""Distillers wired into OVRCNN: ViLD / RKD region distillation, HierKD captions, LazyConfig."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import LazyCall as L
from detectron2.config import instantiate
from detectron2.structures import Boxes, ImageList
from detectron2.utils.events import EventStorage
from torch import nn

from ovdet.methods.hierkd import HierKDGlobalDistillation, hierkd_distiller
from ovdet.methods.rkd import RKDDistillation, rkd_distiller
from ovdet.methods.vild import ViLDImageDistillation, vild_distiller
from ovdet.modeling import OVRCNN
from ovdet.modeling.distill import CaptionDistiller, DistillContext, RegionDistiller

C_TRAIN, D = 5, 16  # as tests/modeling/test_ov_rcnn.py
DETECTOR_KEYS = {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}


def _train_embeddings() -> torch.Tensor:
    return torch.randn(C_TRAIN, D, generator=torch.Generator().manual_seed(1))


def _with_teacher(batch: list[dict], counts=(3, 0), requires_grad: bool = False) -> list[dict]:
    """Add hand-made teacher proposals (image pixels) + embeddings; the 2nd image gets none."""
    g = torch.Generator().manual_seed(7)
    for x, m in zip(batch, counts):
        xy = torch.rand(m, 2, generator=g) * 30
        wh = 8 + torch.rand(m, 2, generator=g) * 25
        x["teacher_proposals"] = torch.cat([xy, (xy + wh).clamp(max=63)], dim=1)
        x["teacher_embeddings"] = F.normalize(torch.randn(m, D, generator=g), dim=1)
        x["teacher_embeddings"].requires_grad_(requires_grad)
    return batch


def _model(cfg_factory, distillers) -> OVRCNN:
    cfg = cfg_factory(_train_embeddings())
    cfg.model.distillers = distillers
    torch.manual_seed(0)
    return instantiate(cfg.model).train()


def _step(model, batch):
    torch.manual_seed(0)
    with EventStorage():
        return model(batch)


def _student_embeddings(model, batch) -> torch.Tensor:
    """region_embeddings on the teacher boxes, computed outside the model's forward."""
    with torch.no_grad():
        features = model.backbone(model.preprocess_image(batch).tensor)
        boxes = [Boxes(x["teacher_proposals"]) for x in batch]
        return model.roi_heads.region_embeddings(features, boxes)


def _teacher(batch) -> torch.Tensor:
    return torch.cat([x["teacher_embeddings"] for x in batch]).detach()


def test_lazyconfig_vild_distiller_trains_and_matches_objective(tiny_fpn_config, make_batch):
    """FPN config + model.distillers=[L(RegionDistiller)(...)]: one training step."""
    cfg = tiny_fpn_config(_train_embeddings())
    cfg.model.distillers = [L(RegionDistiller)(objective=L(ViLDImageDistillation)(weight=0.5))]
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    distiller = model.distillers[0]
    assert isinstance(distiller, RegionDistiller) and distiller.objective.weight == 0.5
    batch = _with_teacher(make_batch(C_TRAIN), requires_grad=True)
    losses = _step(model, batch)
    assert set(losses) == DETECTOR_KEYS | {"loss_vild_image"}
    assert torch.isfinite(losses["loss_vild_image"])
    # the detector's own losses are those of the same model without distillers
    # (tests/modeling/test_ov_rcnn.py pins them for this seed and these embeddings)
    for k, v in PINNED_DETECTOR_LOSSES.items():
        assert losses[k].item() == pytest.approx(v, rel=1e-4), k
    expected = distiller.objective(_student_embeddings(model, batch), _teacher(batch))
    assert losses["loss_vild_image"].item() == pytest.approx(
        expected["loss_vild_image"].item(), rel=1e-5
    )
    assert losses["loss_vild_image"].item() == pytest.approx(PINNED_VILD, rel=1e-4)

    losses["loss_vild_image"].backward()
    fc = model.roi_heads.box_head.fc1.weight
    assert fc.grad is not None and fc.grad.abs().sum() > 0
    assert model.roi_heads.box_predictor.classifier.linear.weight.grad.abs().sum() > 0
    assert all(x["teacher_embeddings"].grad is None for x in batch)
    # the RPN is not a student of region distillation
    assert model.proposal_generator.rpn_head.objectness_logits.weight.grad is None


# torch.manual_seed(0) before building and before the step; CPU, torch 2.14.
PINNED_VILD = 2.135970
PINNED_DETECTOR_LOSSES = {"loss_cls": 26.312742, "loss_box_reg": 0.377603, "loss_mask": 0.693094}


def test_rkd_distiller_max_regions_and_boxes_input(tiny_fpn_config, make_batch):
    objective = RKDDistillation(l1_weight=0.3, irm_weight=2.0)
    model = _model(tiny_fpn_config, [RegionDistiller(objective, max_regions=2)])
    batch = _with_teacher(make_batch(C_TRAIN), counts=(4, 3))
    batch[1]["teacher_proposals"] = Boxes(batch[1]["teacher_proposals"])  # Boxes accepted
    losses = _step(model, batch)
    assert {"loss_rkd_l1", "loss_rkd_irm"} <= set(losses)
    capped = [
        {
            **x,
            "teacher_proposals": torch.as_tensor(_tensor(x["teacher_proposals"])[:2]),
            "teacher_embeddings": x["teacher_embeddings"][:2],
        }
        for x in batch
    ]
    expected = objective(_student_embeddings(model, capped), _teacher(capped))
    for k in ("loss_rkd_l1", "loss_rkd_irm"):
        assert torch.isfinite(losses[k])
        assert losses[k].item() == pytest.approx(expected[k].item(), rel=1e-5), k


def _tensor(boxes):
    return boxes.tensor if isinstance(boxes, Boxes) else boxes


def test_caption_distiller_hierkd(tiny_fpn_config, make_batch, fake_encoder):
    torch.manual_seed(3)
    objective = HierKDGlobalDistillation(32, D, pooling="mean")
    distiller = CaptionDistiller(objective, fake_encoder, choose="first")
    model = _model(tiny_fpn_config, [distiller])
    batch = make_batch(C_TRAIN)
    batch[0]["captions"] = ["a red square.", "a shape."]
    batch[1]["captions"] = "two blue circles."
    losses = _step(model, batch)
    assert set(losses) == DETECTOR_KEYS | {"loss_hierkd_global"}
    loss = losses["loss_hierkd_global"]
    assert torch.isfinite(loss) and loss.item() > 0
    with torch.no_grad():
        features = model.backbone(model.preprocess_image(batch).tensor)
    text = fake_encoder.encode(["a red square.", "two blue circles."])
    expected = objective(features, text)["loss_hierkd_global"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert objective.proj.weight.grad.abs().sum() > 0
    assert model.backbone.bottom_up.stem.conv1.weight.grad.abs().sum() > 0


def test_caption_distiller_masks_images_without_captions(make_batch, fake_encoder):
    calls = []

    class Recorder(nn.Module):
        def forward(self, features, text, valid):
            calls.append((text.clone(), valid.clone()))
            return {"loss_recorded": text.sum() * 0}

    distiller = CaptionDistiller(Recorder(), fake_encoder, choose="random", seed=0, cache_size=2)
    batch = make_batch(C_TRAIN) + make_batch(C_TRAIN)
    batch[0]["captions"] = ["x one", "x two", "x three"]
    batch[1]["captions"] = []  # no caption
    batch[2]["captions"] = [" "]  # only blank
    # batch[3]: key absent
    ctx = DistillContext(batch, None, {"p2": torch.zeros(4, 1, 2, 2)}, [], None)
    distiller(ctx)
    text, valid = calls[-1]
    assert valid.tolist() == [True, False, False, False]
    assert text[1:].abs().sum() == 0
    assert text[0].tolist() in [fake_encoder.encode([c])[0].tolist() for c in batch[0]["captions"]]

    # cache: repeated captions are not re-encoded; bounded LRU
    fixed = CaptionDistiller(Recorder(), fake_encoder, choose="first", cache_size=2)
    batch[1]["captions"] = ["y"]
    before = fake_encoder.calls
    fixed(ctx)
    fixed(ctx)
    assert fake_encoder.calls == before + 1
    assert len(fixed._cache) == 2
    fixed.encode(["z"])
    assert list(fixed._cache) == ["y", "z"]  # "x one" evicted (least recently used)

    # random choice is seeded per instance
    picks = [
        CaptionDistiller(Recorder(), fake_encoder, seed=5).choose_captions(batch) for _ in "ab"
    ]
    assert picks[0] == picks[1]


def test_rkd_plus_hierkd_union_of_keys_and_duplicates(tiny_fpn_config, make_batch, fake_encoder):
    distillers = {
        "rkd": RegionDistiller(RKDDistillation()),
        "hierkd": CaptionDistiller(HierKDGlobalDistillation(32, D), fake_encoder),
    }
    model = _model(tiny_fpn_config, distillers)
    assert isinstance(model.distillers, nn.ModuleDict)
    # HierKD parameters are model parameters (trained with the detector)
    names = {n for n, _ in model.named_parameters()}
    assert "distillers.hierkd.objective.proj.weight" in names
    batch = _with_teacher(make_batch(C_TRAIN))
    for i, x in enumerate(batch):
        x["captions"] = [f"caption {i}"]
    losses = _step(model, batch)
    assert set(losses) == DETECTOR_KEYS | {"loss_rkd_l1", "loss_rkd_irm", "loss_hierkd_global"}
    assert all(torch.isfinite(v) for v in losses.values())

    # two copies of one objective collide: an error naming the key
    model.distillers = nn.ModuleList(
        [RegionDistiller(ViLDImageDistillation()), RegionDistiller(ViLDImageDistillation())]
    )
    with pytest.raises(ValueError, match="index 1.*'loss_vild_image'.*earlier"):
        _step(model, batch)


def test_eval_mode_never_runs_distillers(tiny_fpn_config, make_batch):
    class Exploding(nn.Module):
        def forward(self, context):
            raise AssertionError("distiller called in eval mode")

    model = _model(tiny_fpn_config, [Exploding()]).eval()
    inputs = [{"image": make_batch(C_TRAIN)[0]["image"], "height": 64, "width": 64}]
    with torch.no_grad():
        out = model(inputs)[0]["instances"]
        model.distillers = nn.ModuleList()
        ref = model(inputs)[0]["instances"]
    assert len(out) > 0
    assert torch.equal(out.pred_boxes.tensor, ref.pred_boxes.tensor)
    assert torch.equal(out.scores, ref.scores)


def _context(batch: list[dict]) -> DistillContext:
    images = ImageList.from_tensors([x["image"] for x in batch])
    return DistillContext(batch, images, {}, [], model=None)


def test_missing_keys_give_clear_errors(tiny_fpn_config, make_batch):
    distiller = RegionDistiller(ViLDImageDistillation())
    with pytest.raises(KeyError, match="input 0 has no 'teacher_proposals'.*TeacherTargetsMapper"):
        distiller(_context(make_batch(C_TRAIN)))
    batch = _with_teacher(make_batch(C_TRAIN))
    del batch[1]["teacher_embeddings"]
    with pytest.raises(KeyError, match="input 1 .*no 'teacher_embeddings'.*OnlineRegionTeacher"):
        distiller(_context(batch))
    batch = _with_teacher(make_batch(C_TRAIN))
    batch[0]["teacher_embeddings"] = batch[0]["teacher_embeddings"][:2]
    with pytest.raises(ValueError, match="input 0 has 3 teacher_proposals"):
        distiller(_context(batch))
    batch[0]["teacher_proposals"] = torch.zeros(3, 5)
    with pytest.raises(ValueError, match="input 0: 'teacher_proposals' must be"):
        distiller(_context(batch))
    with pytest.raises(TypeError, match="wrap it in a list"):
        _model(tiny_fpn_config, RegionDistiller(ViLDImageDistillation()))
    with pytest.raises(TypeError, match="distiller at index 0 is a str"):
        _model(tiny_fpn_config, ["vild"])


def test_online_teacher_is_called_and_not_a_submodule(tiny_fpn_config, make_batch):
    class FakeOnlineTeacher(nn.Module):
        """Teacher embedding = a fixed projection of the box coordinates."""

        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, D)
            self.seen = []

        def forward(self, batched_inputs):
            self.seen.append([len(x["teacher_proposals"]) for x in batched_inputs])
            self.grad_enabled = torch.is_grad_enabled()
            return [F.normalize(self.proj(x["teacher_proposals"]), dim=1) for x in batched_inputs]

    teacher = FakeOnlineTeacher()
    objective = ViLDImageDistillation()
    model = _model(tiny_fpn_config, [RegionDistiller(objective, teacher=teacher, max_regions=2)])
    assert not any(n.startswith("distillers.0.teacher") for n, _ in model.named_parameters())
    assert not any("teacher" in k for k in model.state_dict())
    batch = _with_teacher(make_batch(C_TRAIN), counts=(3, 1))
    for x in batch:
        del x["teacher_embeddings"]  # online mode does not need them
    losses = _step(model, batch)
    assert teacher.seen == [[2, 1]]
    capped = [{**x, "teacher_proposals": x["teacher_proposals"][:2]} for x in batch]
    with torch.no_grad():
        target = torch.cat(teacher(capped))
    expected = objective(_student_embeddings(model, capped), target)["loss_vild_image"]
    assert losses["loss_vild_image"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert teacher.grad_enabled is False  # the teacher runs under no_grad


def test_method_config_helpers(tiny_fpn_config, make_batch, fake_encoder):
    assert vild_distiller().objective.weight == 0.5
    assert vild_distiller().max_regions is None
    rkd = rkd_distiller()
    assert rkd.objective.l1_weight == pytest.approx(0.15 * 100)  # official COCO weight x 100
    assert rkd.max_regions == 5
    normalised = rkd_distiller(form="normalised", embed_dim=128, official_l1_weight=0.25)
    assert normalised.objective.l1_weight == pytest.approx(0.25 * 100 / 128)
    assert rkd_distiller() is not rkd  # fresh LazyCalls: configs never share one object
    cfg = tiny_fpn_config(_train_embeddings())
    cfg.model.distillers = [
        rkd,
        hierkd_distiller(fake_encoder, in_channels=32, embed_dim=D, in_features=["p3", "p4"]),
    ]
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    batch = _with_teacher(make_batch(C_TRAIN), counts=(6, 2))
    batch[0]["captions"] = ["a cat."]
    batch[1]["captions"] = ["a dog."]
    losses = _step(model, batch)
    assert {"loss_rkd_l1", "loss_rkd_irm", "loss_hierkd_global"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_real_online_region_teacher(tiny_fpn_config, make_batch):
    """RegionDistiller + ovdet's OnlineRegionTeacher on a random-weight small CLIP."""
    from ovdet.teacher import CLIPCropTeacher
    from ovdet.teacher.online import OnlineRegionTeacher
    from ovdet.teacher.small_clip import create_small_clip

    torch.manual_seed(0)
    clip = create_small_clip(image_size=32)
    dim = int(clip.model_cfg["embed_dim"])
    teacher = OnlineRegionTeacher(
        CLIPCropTeacher(clip.model.eval(), preprocess=clip.preprocess), input_format="BGR"
    )
    cfg = tiny_fpn_config(torch.randn(C_TRAIN, dim))
    cfg.model.distillers = [RegionDistiller(ViLDImageDistillation(), teacher=teacher)]
    model = instantiate(cfg.model).train()
    batch = make_batch(C_TRAIN)
    batch[0]["teacher_proposals"] = Boxes(torch.tensor([[2.0, 2.0, 30.0, 30.0], [10, 10, 60, 50]]))
    batch[1]["teacher_proposals"] = torch.zeros(0, 4)
    losses = _step(model, batch)
    plain = [{**x, "teacher_proposals": _tensor(x["teacher_proposals"])} for x in batch]
    expected = ViLDImageDistillation()(
        _student_embeddings(model, plain), torch.cat(teacher(plain))
    )["loss_vild_image"]
    assert losses["loss_vild_image"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("bad", [-1, "None", 2.5, True])
def test_region_distiller_rejects_bad_max_regions(bad):
    with pytest.raises(ValueError, match="max_regions.*null"):
        RegionDistiller(RKDDistillation(), max_regions=bad)


def test_region_distiller_accepts_numpy_ints_and_none():
    import numpy as np

    assert RegionDistiller(RKDDistillation(), max_regions=np.int64(3)).max_regions == 3
    assert RegionDistiller(RKDDistillation(), max_regions=None).max_regions is None
