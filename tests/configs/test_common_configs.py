"""Shared config parts instantiate; the small CPU model trains a step."""

import runpy
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import FrozenBatchNorm2d
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

ROOT = Path(__file__).resolve().parents[2] / "configs" / "common"


def test_train_optim_schedules():
    train = LazyConfig.load(str(ROOT / "train.py")).train
    assert train.max_iter == 90000 and train.device == "auto"
    optim_cfg = LazyConfig.load(str(ROOT / "optim.py"))
    model = torch.nn.Linear(2, 2)
    for name in ("SGD", "AdamW"):
        opt_cfg = optim_cfg[name]
        opt_cfg.params.model = model
        assert isinstance(instantiate(opt_cfg), torch.optim.Optimizer)
    sched = LazyConfig.load(str(ROOT / "schedules.py"))
    one_x = instantiate(sched.lr_multiplier_1x)
    assert one_x(0.0) == 0.001  # warmup start
    assert one_x(0.5) == 1.0 and one_x(61000 / 90000) == 0.1 and one_x(0.95) == 0.01


def test_small_model_trains_a_step():
    cfg = LazyConfig.load(str(ROOT / "models" / "ov_rcnn_small_fpn.py"))
    cfg.model.roi_heads.box_predictor.classifier.train_embeddings = torch.nn.functional.normalize(
        torch.randn(4, 16), dim=1
    )
    model = instantiate(cfg.model)
    inst = Instances((96, 96))
    inst.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 50.0, 60.0]]))
    inst.gt_classes = torch.tensor([2])
    from detectron2.structures import BitMasks

    mask = torch.zeros(1, 96, 96, dtype=torch.bool)
    mask[0, 12:60, 10:50] = True
    inst.gt_masks = BitMasks(mask)
    batch = [{"image": torch.rand(3, 96, 96) * 255, "instances": inst}]
    with EventStorage(0):
        losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 96, 96) * 255}])[0]["instances"]
    assert out.has("pred_masks") and (out.pred_classes < 4).all()


# ------------------------------------------------------------------ recipes' common parts
CONFIGS = ROOT.parent
EXPERIMENTS = sorted(
    str(p.relative_to(CONFIGS)) for d in ("ov_coco", "ov_lvis") for p in (CONFIGS / d).glob("*.py")
)


def test_syncbn_model_builds_and_trains_a_step():
    """ViLD's architecture (configs/common/models/ov_rcnn_fpn_syncbn.py), narrowed."""
    from detectron2.config import LazyCall as L

    from ovdet.modeling.backbone import small_resnet_stages

    cfg = LazyConfig.load(str(ROOT / "models" / "ov_rcnn_fpn_syncbn.py"))
    m = cfg.model
    m.backbone.bottom_up.stages = L(small_resnet_stages)(
        blocks_per_stage=(1, 1, 1, 1), base_channels=16, stem_channels=64, norm="SyncBN"
    )
    m.roi_heads.batch_size_per_image = 16
    m.proposal_generator.post_nms_topk = (16, 16)
    m.roi_heads.box_predictor.classifier.train_embeddings = torch.nn.functional.normalize(
        torch.randn(4, 16), dim=1
    )
    model = instantiate(m)
    assert not any(isinstance(x, FrozenBatchNorm2d) for x in model.modules())
    assert model.backbone.bottom_up.stem.conv1.norm.__class__.__name__ == "SyncBatchNorm"
    inst = Instances((64, 64))
    inst.gt_boxes = Boxes(torch.tensor([[4.0, 6.0, 40.0, 50.0]]))
    inst.gt_classes = torch.tensor([2])
    from detectron2.structures import BitMasks

    mask = torch.zeros(1, 64, 64, dtype=torch.bool)
    mask[0, 6:50, 4:40] = True
    inst.gt_masks = BitMasks(mask)
    with EventStorage(0):
        losses = model([{"image": torch.rand(3, 64, 64) * 255, "instances": inst}] * 2)
    sum(losses.values()).backward()


def test_region_store_commands_parse_and_record_the_selection():
    """configs/common/distill_paths.py: the command of every store is a valid `ovdet
    extract-regions` command whose proposal source records RKD's "+1" NMS."""
    from ovdet.cli.extract_regions import _parse, proposal_filters

    paths = LazyConfig.load(str(ROOT / "distill_paths.py"))
    run = runpy.run_path(str(ROOT / "distill_paths.py"))
    for name, spec in paths.REGION_STORES.items():
        args = _parse(run["extract_command"](name))
        assert args.top_m == spec.top_m and tuple(args.scales) == tuple(spec.scales)
        assert args.nms == spec.nms and args.nms_legacy_plus_one == spec.nms_legacy_plus_one
        assert (CONFIGS / spec.rpn_config).is_file()
        assert args.out.endswith(name)
        assert ("nms_legacy_plus_one=True" in proposal_filters(args)) == spec.nms_legacy_plus_one
    assert proposal_filters(_parse(run["extract_command"]("ov_coco_train_base_vitb32_top32"))) == (
        "|nms=None|min_size=0.0"  # unchanged for stores written before the flag existed
    )
    with pytest.raises(SystemExit):
        _parse(["--teacher", "t", "--dataset", "d", "--proposals", "p", "--out", "o",
                "--nms-legacy-plus-one"])  # fmt: skip


@pytest.mark.parametrize("rel", EXPERIMENTS)
def test_config_names_its_inputs_by_what_made_them(rel, monkeypatch, tmp_path):
    """The embedding file says which prompts made it and ``model.templates`` are those prompts;
    the region store (if any) is one of distill_paths.REGION_STORES."""
    from ovdet.text import get_templates

    monkeypatch.setenv("OVDET_DATASETS", str(tmp_path))
    cfg = LazyConfig.load(str(CONFIGS / rel))
    prompts = LazyConfig.load(str(ROOT / "text_embeddings.py")).EMBEDDING_PROMPTS
    stores = LazyConfig.load(str(ROOT / "distill_paths.py")).REGION_STORES
    if "classifier" not in cfg.model.roi_heads.box_predictor:
        # Grounding R-CNN: no embedding file, its token encoder reads the class names
        assert "token_encoder" in cfg.model and "store" not in cfg.dataloader.train.mapper
        return
    classifier = cfg.model.roi_heads.box_predictor.classifier
    name = Path(classifier.train_embeddings.path).name
    assert name in prompts, name
    templates, _ = prompts[name]
    assert list(cfg.model.templates) == get_templates(templates)
    if classifier.get("test_embeddings") is not None:
        assert Path(classifier.test_embeddings.path).name == name
    store = cfg.dataloader.train.mapper.get("store")
    if store is not None:
        assert Path(store).name in stores
        assert Path(store).parent == tmp_path / "teacher"
