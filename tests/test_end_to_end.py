"""End to end through the command line: train a few iterations on a tiny COCO-format
dataset, resume, evaluate, then run ``ovdet detect`` (with a corrupt image among the inputs)
and score its output with ``ovdet evaluate``."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from ovdet.cli import main as cli
from ovdet.data.synthetic import generate_ov_shapes
from ovdet.text.clip_models import tiny_clip_config

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
import json
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig
from detectron2.data import transforms as T
from ovdet.data.datasets import register_ov_dataset
from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings

DATA = {data!r}
split = json.load(open(DATA + "/split.json"))
for name, js, novel in (("e2e_train", "train_base.json", None),
                        ("e2e_val", "val.json", split["novel"])):
    register_ov_dataset(name, DATA + "/" + js, DATA + "/images/" + name[4:], novel=novel,
                        replace=True)

model = LazyConfig.load({root!r} + "/configs/common/models/ov_rcnn_small_fpn.py").model
encoder = L(OpenCLIPTextEncoder.from_config)(config={clip!r}, seed=0, device="cpu")
model.text_encoder = encoder
cls = model.roi_heads.box_predictor.classifier
cls.train_embeddings = L(build_class_embeddings)(encoder=encoder, classes=split["base"],
                                                 templates=["a {{}}."])
cls.test_embeddings = L(build_class_embeddings)(
    encoder=encoder, classes=[c["name"] for c in split["categories"]], templates=["a {{}}."])
model.vocabulary = [c["name"] for c in split["categories"]]

dataloader = LazyConfig.load({root!r} + "/configs/common/data/coco_format.py").dataloader
dataloader.train.dataset.names = "e2e_train"
dataloader.test.dataset.names = "e2e_val"
for part, aug in (("train", [L(T.ResizeShortestEdge)(short_edge_length=96, max_size=96),
                             L(T.RandomFlip)(horizontal=True)]),
                  ("test", [L(T.ResizeShortestEdge)(short_edge_length=96, max_size=96)])):
    dataloader[part].mapper.augmentations = aug
    dataloader[part].mapper.use_instance_mask = True
    dataloader[part].mapper.instance_mask_format = "bitmask"
    dataloader[part].num_workers = 0
dataloader.train.total_batch_size = 2
dataloader.evaluator.tasks = ("bbox", "segm")

optimizer = LazyConfig.load({root!r} + "/configs/common/optim.py").AdamW
optimizer.lr = 1e-3
lr_multiplier = LazyConfig.load({root!r} + "/configs/common/schedules.py").lr_multiplier_1x
train = LazyConfig.load({root!r} + "/configs/common/train.py").train
train.output_dir = {out!r}
train.max_iter = 4
train.eval_period = 1000
train.checkpointer = dict(period=2, max_to_keep=5)
train.log_period = 2
train.device = "cpu"
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    generate_ov_shapes(data, num_train=6, num_val=3, seed=3, progress=False)
    clip_json = root / "clip.json"
    clip_json.write_text(json.dumps(tiny_clip_config(embed_dim=16, image_size=32)))
    cfg = root / "config.py"
    cfg.write_text(
        textwrap.dedent(CONFIG).format(
            data=str(data), root=str(ROOT), clip=str(clip_json), out=str(root / "out")
        )
    )
    return root


def test_train_resume_eval_detect(workdir, capsys):
    cfg = str(workdir / "config.py")
    out = workdir / "out"
    assert cli(["train", "--config-file", cfg]) == 0
    assert (out / "model_final.pth").is_file()
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    # log_period 2 over 4 iterations: the losses of iterations 1 and 3, then the evaluation
    # after training (logged at iteration 4)
    trained = {m["iteration"]: m for m in metrics if "total_loss" in m}
    assert sorted(trained) == [1, 3]
    for m in trained.values():
        parts = [m[k] for k in ("loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc")]
        assert all(math.isfinite(v) for v in parts) and m["total_loss"] > 0
    evaluated = [m for m in metrics if "bbox/AP50_novel" in m]
    assert [m["iteration"] for m in evaluated] == [4]

    # resume continues from the last checkpoint (iteration 4) up to the new max_iter
    assert cli(["train", "--config-file", cfg, "--resume", "train.max_iter=6"]) == 0
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
    logged = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    trained = [m["iteration"] for m in logged if "total_loss" in m]
    assert len(trained) == len(set(trained)), "resume re-ran finished iterations"
    assert max(trained) >= 5

    capsys.readouterr()
    assert (
        cli(["eval", "--config-file", cfg, f"train.init_checkpoint={out / 'model_final.pth'}"]) == 0
    )
    assert "AP50" in capsys.readouterr().out

    images = workdir / "data" / "images" / "val"
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    det = workdir / "detect"
    rc = cli(
        [
            "detect",
            "--config",
            cfg,
            "--weights",
            str(out / "model_final.pth"),
            "--vocab",
            "red circle,blue square,yellow star",
            "--input",
            str(images),
            "--output",
            str(det),
            "--score-thresh",
            "0.0",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            # after 6 iterations everything is background at tau=0.01 (class scores underflow to
            # 0); a soft temperature makes the untrained model emit boxes for the pipeline check
            "model.roi_heads.box_predictor.classifier.temperature=1.0",
        ]
    )
    assert rc == 0
    errors = json.loads((det / "errors.json").read_text())
    assert [Path(e["file"]).name for e in errors] == ["broken.png"]
    coco = COCO(str(det / "detections.json"))
    assert len(coco.getImgIds()) == 3
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "red circle",
        "blue square",
        "yellow star",
    ]
    results = json.loads((det / "results.json").read_text())
    assert results and all(r["category_id"] in (1, 2, 3) for r in results)
    assert len(list((det / "vis").glob("*.png"))) == 3

    capsys.readouterr()
    rc = cli(
        [
            "evaluate",
            "--gt",
            str(det / "detections.json"),
            "--pred",
            str(det / "results.json"),
            "--json",
        ]
    )
    assert rc == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["bbox"]["AP"] == pytest.approx(100.0)  # detections scored against themselves
