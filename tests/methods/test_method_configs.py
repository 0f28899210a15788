"""Every registered method's configs (OV-COCO, OV-LVIS, OV-Shapes; default recipes, variants
and base stages) build a model that trains with exactly the method's objectives for that
config: a config that silently loses one fails here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

import ovdet.methods
from ovdet.data.synthetic import generate_ov_shapes, load_split
from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods import METHODS, get_method
from ovdet.methods.hierkd import HierKDInstanceDistiller
from ovdet.methods.vild_ensemble import OVEnsembleOutputLayers, ViLDEnsembleROIHeads
from ovdet.modeling.backbone import small_resnet_stages
from ovdet.modeling.distill import CaptionDistiller, RegionDistiller
from ovdet.teacher.online import OnlineRegionTeacher
from ovdet.text import OpenCLIPTextEncoder, OpenCLIPTokenEncoder, save_class_embeddings
from ovdet.text.clip_models import tiny_clip_config

DETECTOR_LOSSES = {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc", "loss_mask"}
CASES = [
    pytest.param(m.name, benchmark, role, path, id=f"{m.name}-{benchmark}-{role}")
    for m in METHODS.values()
    for benchmark, role, path in m.all_configs()
]
OV_SHAPES_DIM = 128  # the benchmark teacher's embedding size (configs/ov_shapes/*)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_registry_lists_every_method_and_config_file():
    # every method package registers itself (a package missing from ovdet/methods/__init__.py
    # would not be imported, registered, benchmarked or tested)
    packages = {p.parent.name for p in Path(ovdet.methods.__file__).parent.glob("*/__init__.py")}
    assert packages <= set(METHODS)
    assert list(METHODS)[:3] == ["vild_text", "vild", "vild_ensemble"]  # registration order
    for m in METHODS.values():
        for benchmark, role, _ in m.all_configs():
            assert m.config_path(benchmark, role).is_file()
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        get_method("nope")
    with pytest.raises(KeyError, match="has no ov_lvis config"):
        get_method("rkd_hierkd").config_path("ov_lvis")
    with pytest.raises(KeyError, match="has no ov_coco config variant 'd2_9x'"):
        get_method("vild").config_path("ov_coco", "d2_9x")
    rkd = get_method("rkd")
    assert rkd.config_path("ov_coco", "base").name == "rkd_base_r50_c4_1x.py"
    assert rkd.losses_for("ov_coco/rkd_base_r50_c4_1x.py") == ()
    hierkd = get_method("hierkd")
    assert hierkd.losses_for("ov_shapes/hierkd_small.py") == hierkd.losses
    assert hierkd.needs_for("ov_coco/hierkd_r50_fpn_ss_1x.py") == {"online_teacher", "captions"}


def test_every_coco_and_lvis_config_is_registered():
    """No config under configs/ov_coco or configs/ov_lvis escapes the training test below."""
    registered = {path for m in METHODS.values() for _, _, path in m.all_configs()}
    files = {
        str(p.relative_to(CONFIGS))
        for d in ("ov_coco", "ov_lvis")
        for p in (CONFIGS / d).glob("*.py")
    }
    assert files <= registered, sorted(files - registered)


def test_registry_refuses_inconsistent_methods():
    with pytest.raises(ValueError, match="unknown needs"):
        ovdet.methods.Method("x", "X", "", "", "", {}, needs=frozenset({"magic"}))
    with pytest.raises(ValueError, match="does not have"):
        ovdet.methods.Method("x", "X", "", "", "", {}, config_losses={"a.py": ("loss_a",)})
    with pytest.raises(ValueError, match="unknown benchmarks"):
        ovdet.methods.Method("x", "X", "", "", "", {}, variants={"voc": {"a": "a.py"}})


@pytest.fixture(scope="module")
def roots(tmp_path_factory, test_data):
    """OVDET_DATASETS with the real CLIP text embeddings under every file name the configs
    expect, and a tiny OV-Shapes root."""
    from detectron2.config import LazyConfig as _LC

    datasets = tmp_path_factory.mktemp("datasets")
    meta = datasets / "metadata"
    meta.mkdir()
    files = _LC.load(str(CONFIGS / "common" / "text_embeddings.py")).EMBEDDING_PROMPTS
    assets = test_data / "clip_text_embeddings"
    for name in files:
        source = "coco_clip_a+cname.npy" if name.startswith("coco") else "lvis_v1_clip_a+cname.npy"
        shutil.copy(assets / source, meta / name)
    shapes = tmp_path_factory.mktemp("ov_shapes")
    generate_ov_shapes(shapes, num_train=2, num_val=1, seed=3, progress=False)
    names = [c["name"] for c in load_split(shapes)["categories"]]
    emb = torch.randn(len(names), OV_SHAPES_DIM, generator=torch.Generator().manual_seed(0))
    save_class_embeddings(shapes / "class_embeddings.pt", emb, names)
    return datasets, shapes


def _narrow(values, width: int):
    return [width] * len(values)


def shrink(cfg, width: int = 32) -> None:
    """R50 -> a narrow ResNet, FPN and heads ``width`` channels wide (the same number of layers
    and norms), or R18 + a narrow res5 (C4); few proposals and regions: fast on a CPU."""
    model = cfg.model
    if "bottom_up" in model.backbone:
        bottom_up = model.backbone.bottom_up
        bottom_up.stem.out_channels = 16
        bottom_up.stem.norm = "BN"
        bottom_up.stages = L(small_resnet_stages)(
            blocks_per_stage=(1, 1, 1, 1), base_channels=16, stem_channels=16
        )
        bottom_up.freeze_at = 0
        model.backbone.out_channels = width
        head = model.proposal_generator.head
        head.in_channels = width
        if "conv_dims" in head and list(head.conv_dims) != [-1]:
            head.conv_dims = _narrow(head.conv_dims, width)
        roi = model.roi_heads
        box_heads = (
            [roi.box_head.text_head, roi.box_head.image_head]
            if "text_head" in roi.box_head
            else [roi.box_head]
        )
        for box_head in box_heads:
            box_head.input_shape.channels = width
            box_head.conv_dims = _narrow(box_head.conv_dims, width)
        if roi.get("mask_head") is not None:
            roi.mask_head.input_shape.channels = width
            roi.mask_head.conv_dims = _narrow(roi.mask_head.conv_dims, width)
        for distiller in model.get("distillers", []):
            if "in_channels" in distiller.get("objective", {}):
                distiller.objective.in_channels = width
    else:  # C4: the res5 stage runs in the ROI heads
        model.backbone.stem.norm = "BN"
        model.backbone.stages.norm = "BN"
        model.backbone.stages.depth = 18
        del model.backbone.stages.stride_in_1x1
        model.backbone.freeze_at = 0
        model.proposal_generator.head.in_channels = 256
        res5 = model.roi_heads.res5
        res5.in_channels, res5.bottleneck_channels, res5.out_channels = 256, 32, 64
        res5.norm = "BN"
        model.roi_heads.box_predictor.input_shape.channels = 64
        model.roi_heads.box_predictor.classifier.input_shape.channels = 64
    model.proposal_generator.pre_nms_topk = (100, 100)
    model.proposal_generator.post_nms_topk = (16, 16)
    model.roi_heads.batch_size_per_image = 16


class FakeRegionTeacher:
    """Stands for the online CLIP teacher: one normalised embedding per box, no weights."""

    def __init__(self, dim: int):
        self.dim = dim

    def __call__(self, batched_inputs):
        g = torch.Generator().manual_seed(0)
        return [
            F.normalize(torch.randn(len(x["teacher_proposals"]), self.dim, generator=g), dim=1)
            for x in batched_inputs
        ]


def _load(path: str, roots, monkeypatch):
    datasets, shapes = roots
    monkeypatch.setenv("OVDET_DATASETS", str(datasets))
    cfg = LazyConfig.load(str(CONFIGS / path))
    if path.startswith("ov_shapes/"):
        cfg.ov_shapes.root = str(shapes)
        cfg.ov_shapes.prefix = "ovs_method_configs"
        return cfg, OV_SHAPES_DIM
    shrink(cfg)
    return cfg, 512


def _batch(dim: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(2):
        inst = Instances((64, 64))
        inst.gt_boxes = Boxes(torch.tensor([[4.0, 6.0, 40.0, 50.0]]))
        inst.gt_classes = torch.tensor([1])
        mask = torch.zeros(1, 64, 64, dtype=torch.bool)
        mask[0, 6:50, 4:40] = True
        inst.gt_masks = BitMasks(mask)
        out.append(
            {
                "image": torch.rand(3, 64, 64, generator=g) * 255,
                "instances": inst,
                "teacher_proposals": torch.tensor([[2.0, 2.0, 30.0, 30.0], [10, 10, 60, 50]]),
                "teacher_embeddings": torch.randn(2, dim, generator=g),
                "captions": [f"a photo number {i}"],
            }
        )
    return out


@pytest.mark.parametrize("method, benchmark, role, path", CASES)
def test_config_trains_with_exactly_its_objectives(
    method, benchmark, role, path, roots, monkeypatch
):
    spec = get_method(method)
    needs = spec.needs_for(path)
    cfg, dim = _load(path, roots, monkeypatch)
    distillers = list(cfg.model.get("distillers", []))
    region = [d for d in distillers if d._target_ is RegionDistiller]
    caption = [d for d in distillers if d._target_ is CaptionDistiller]
    online = [d for d in distillers if d._target_ is HierKDInstanceDistiller]
    assert bool(region) == ("region_targets" in needs)
    assert bool(caption) == ("captions" in needs)
    assert bool(online) == ("online_teacher" in needs)
    if region:  # offline region targets: the training mapper reads a region store
        assert cfg.dataloader.train.mapper._target_ is TeacherTargetsMapper
        assert cfg.dataloader.train.mapper.store
    for d in caption:  # the real text tower needs CLIP weights: a tiny random one
        d.text_encoder = L(OpenCLIPTextEncoder.from_config)(
            config=tiny_clip_config(embed_dim=16), seed=0, device="cpu"
        )
        d.objective.embed_dim = 16
        if benchmark != "ov_shapes":
            assert "captions" in cfg.dataloader.train.dataset.names
    if "token_encoder" in cfg.model:  # the grounding detector's BERT / CLIP tower: a tiny one
        cfg.model.token_encoder = L(OpenCLIPTokenEncoder.from_config)(
            config=tiny_clip_config(embed_dim=16), seed=0, device="cpu"
        )
    for d in online:  # the real teacher is CLIP ViT-B/32 (weights needed): a stand-in
        assert d.teacher._target_ is OnlineRegionTeacher
        d.teacher = FakeRegionTeacher(dim)

    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    assert isinstance(model.roi_heads, ViLDEnsembleROIHeads) == spec.ensemble
    assert isinstance(model.roi_heads.box_predictor, OVEnsembleOutputLayers) == spec.ensemble
    with EventStorage(0):
        losses = model(_batch(dim))
    assert set(losses) - DETECTOR_LOSSES == set(spec.losses_for(path))
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
