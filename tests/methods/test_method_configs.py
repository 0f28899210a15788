"""Every registered method's configs (OV-COCO, OV-LVIS, OV-Shapes) build a model that trains
with exactly the method's objectives: a config that silently loses one fails here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

import ovdet.methods
from ovdet.data.synthetic import generate_ov_shapes, load_split
from ovdet.data.teacher_mapper import TeacherTargetsMapper
from ovdet.methods import METHODS, get_method
from ovdet.methods.vild_ensemble import OVEnsembleOutputLayers, ViLDEnsembleROIHeads
from ovdet.modeling.backbone import small_resnet_stages
from ovdet.modeling.distill import CaptionDistiller, RegionDistiller
from ovdet.text import OpenCLIPTextEncoder, save_class_embeddings
from ovdet.text.clip_models import tiny_clip_config

DETECTOR_LOSSES = {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc", "loss_mask"}
CASES = [(m.name, benchmark) for m in METHODS.values() for benchmark in m.configs]
OV_SHAPES_DIM = 128  # the benchmark teacher's embedding size (configs/ov_shapes/*)


def test_registry_lists_every_method_and_config_file():
    # every method package registers itself (a package missing from ovdet/methods/__init__.py
    # would not be imported, registered, benchmarked or tested)
    packages = {p.parent.name for p in Path(ovdet.methods.__file__).parent.glob("*/__init__.py")}
    assert packages <= set(METHODS)
    assert list(METHODS)[:3] == ["vild_text", "vild", "vild_ensemble"]  # registration order
    for name, benchmark in CASES:
        assert get_method(name).config_path(benchmark).is_file()
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        get_method("nope")
    with pytest.raises(KeyError, match="has no ov_lvis config"):
        get_method("rkd_hierkd").config_path("ov_lvis")


@pytest.fixture(scope="module")
def roots(tmp_path_factory, test_data):
    """OVDET_DATASETS with the real CLIP text embeddings, and a tiny OV-Shapes root."""
    datasets = tmp_path_factory.mktemp("datasets")
    meta = datasets / "metadata"
    meta.mkdir()
    for name in ("coco_clip_a+cname.npy", "lvis_v1_clip_a+cname.npy"):
        shutil.copy(test_data / "clip_text_embeddings" / name, meta / name)
    shapes = tmp_path_factory.mktemp("ov_shapes")
    generate_ov_shapes(shapes, num_train=2, num_val=1, seed=3, progress=False)
    names = [c["name"] for c in load_split(shapes)["categories"]]
    emb = torch.randn(len(names), OV_SHAPES_DIM, generator=torch.Generator().manual_seed(0))
    save_class_embeddings(shapes / "class_embeddings.pt", emb, names)
    return datasets, shapes


def _load(method: str, benchmark: str, roots, monkeypatch):
    datasets, shapes = roots
    monkeypatch.setenv("OVDET_DATASETS", str(datasets))
    cfg = LazyConfig.load(str(get_method(method).config_path(benchmark)))
    if benchmark == "ov_shapes":
        cfg.ov_shapes.root = str(shapes)
        cfg.ov_shapes.prefix = f"ovs_{method}"
        return cfg, OV_SHAPES_DIM
    bottom_up = cfg.model.backbone.bottom_up  # R50 -> a narrow ResNet: fast on a CPU
    bottom_up.stem.out_channels = 16
    bottom_up.stem.norm = "BN"
    bottom_up.stages = L(small_resnet_stages)(
        blocks_per_stage=(1, 1, 1, 1), base_channels=16, stem_channels=16
    )
    bottom_up.freeze_at = 0
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


@pytest.mark.parametrize("method, benchmark", CASES)
def test_config_trains_with_exactly_its_objectives(method, benchmark, roots, monkeypatch):
    spec = get_method(method)
    cfg, dim = _load(method, benchmark, roots, monkeypatch)
    distillers = list(cfg.model.get("distillers", []))
    region = [d for d in distillers if d._target_ is RegionDistiller]
    caption = [d for d in distillers if d._target_ is CaptionDistiller]
    assert bool(region) == ("region_targets" in spec.needs)
    assert bool(caption) == ("captions" in spec.needs)
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

    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    assert isinstance(model.roi_heads, ViLDEnsembleROIHeads) == spec.ensemble
    assert isinstance(model.roi_heads.box_predictor, OVEnsembleOutputLayers) == spec.ensemble
    with EventStorage(0):
        losses = model(_batch(dim))
    assert set(losses) - DETECTOR_LOSSES == set(spec.losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
