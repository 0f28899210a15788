"""Small-CLIP pretraining: data reading, a short CPU run that learns, checkpoint round trip, CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import open_clip
import pytest
import torch
from PIL import Image, ImageDraw

from ovdet.teacher.pretrain import (
    CropCaptionDataset,
    PretrainConfig,
    crop_region,
    evaluate_zero_shot,
    pretrain_clip,
    read_captions,
    read_coco_instances,
    resolve_data_files,
)
from ovdet.teacher.small_clip import (
    SMALL_CLIP,
    SMALL_CLIP_SIGMOID,
    create_small_clip,
    load_small_clip,
    register_clip_configs,
    save_small_clip,
)

# name, colour, shape; the last one is the "novel" class of the fixture.
CLASSES = [
    ("red circle", (220, 30, 30), "circle"),
    ("green square", (30, 200, 30), "square"),
    ("blue triangle", (30, 60, 230), "triangle"),
    ("yellow circle", (230, 220, 30), "circle"),
]


def _draw(d: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], color) -> None:
    x0, y0, x1, y1 = box
    if kind == "circle":
        d.ellipse(box, fill=color)
    elif kind == "square":
        d.rectangle(box, fill=color)
    else:
        d.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=color)


def make_shapes_dataset(root: Path, n_train: int = 24, n_val: int = 8, size: int = 64) -> Path:
    """Tiny OV-Shapes-like data: 2 shapes per grey image, COCO instances + captions + split."""
    rng = random.Random(0)
    cats = [{"id": i + 1, "name": name} for i, (name, _, _) in enumerate(CLASSES)]
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        images, anns, caps = [], [], []
        for k in range(n):
            im = Image.new("RGB", (size, size), (128, 128, 128))
            d = ImageDraw.Draw(im)
            names = []
            for j in range(2):
                c = (2 * k + j) % len(CLASSES)
                name, color, kind = CLASSES[c]
                s = rng.randint(16, 24)
                x = (0 if j == 0 else size // 2) + rng.randint(0, size // 2 - s)
                y = rng.randint(0, size - s)
                _draw(d, kind, (x, y, x + s - 1, y + s - 1), color)
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": k + 1,
                        "category_id": c + 1,
                        "bbox": [x, y, s, s],
                        "area": s * s,
                        "iscrowd": 0,
                    }
                )
                names.append(name)
            im.save(root / "images" / split / f"{k:04d}.png")
            images.append({"id": k + 1, "file_name": f"{k:04d}.png", "width": size, "height": size})
            caps.append(
                {"id": k + 1, "image_id": k + 1, "caption": f"a {names[0]} and a {names[1]}."}
            )
        inst = {"images": images, "annotations": anns, "categories": cats}
        (root / ("train_all.json" if split == "train" else "val.json")).write_text(json.dumps(inst))
        (root / f"captions_{split}.json").write_text(
            json.dumps({"images": images, "annotations": caps})
        )
    split_json = {"base": [c[0] for c in CLASSES[:3]], "novel": [CLASSES[3][0]], "categories": cats}
    (root / "split.json").write_text(json.dumps(split_json))
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    # The CI machine has 2 shared cores: one torch thread is faster than two under contention.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def trained(shapes_dir, tmp_path_factory):
    """One short ITC run shared by the tests below (about 40 steps of 32 crops at 32 px)."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    cfg = PretrainConfig(
        image_size=32,
        batch_size=32,
        epochs=1000,
        max_steps=40,
        lr=2e-3,
        warmup_steps=5,
        num_workers=0,
        threads=1,
        log_every=10,
    )
    logs: list[str] = []
    summary = pretrain_clip(resolve_data_files(shapes_dir), out, cfg, log=logs.append)
    return summary, out, logs


def test_resolve_and_read_data(shapes_dir):
    files = resolve_data_files(shapes_dir)
    assert files.train_json.name == "train_all.json" and files.val_json.name == "val.json"
    assert files.novel == ["yellow circle"] and files.base == [c[0] for c in CLASSES[:3]]
    train = read_coco_instances(files.train_json, files.train_image_roots)
    assert train.image_root == shapes_dir / "images" / "train"
    assert train.classnames == [c[0] for c in CLASSES] and len(train.crops) == 48
    records = read_captions(files.captions_json, files.train_image_roots)
    assert len(records) == 24 and records[0].captions == ("a red circle and a green square.",)
    assert resolve_data_files(shapes_dir, novel=["red circle"]).novel == ["red circle"]


def test_crop_geometry_and_dataset_items(shapes_dir):
    # box (10, 20, 10, 20) enlarged 1.5x about (15, 30): x 7.5..22.5, y 15..45 -> floor/ceil.
    assert crop_region((10, 20, 10, 20), 64, 64, 1.5, (0.0, 0.0)) == (7, 15, 23, 45)
    # clipped to the image, at least one pixel
    assert crop_region((60, 60, 10, 10), 64, 64, 2.0, (0.0, 0.0)) == (55, 55, 64, 64)
    assert crop_region((63.5, 10, 0.2, 0.2), 64, 64, 1.0, (0.0, 0.0)) == (63, 10, 64, 11)
    clip = create_small_clip(image_size=32)
    files = resolve_data_files(shapes_dir)
    train = read_coco_instances(files.train_json, files.train_image_roots)
    ds = CropCaptionDataset(train.crops, train.classnames, clip.preprocess, clip.tokenizer)
    image, tokens, label = ds[1]
    assert image.shape == (3, 32, 32) and tokens.shape == (32,) and label == 1
    # the caption names the class; the tokenizer pads to the model's context length
    decoded = open_clip.decode(tokens)
    assert "green square" in decoded


def test_tokenizer_truncates_to_context_length():
    clip = create_small_clip(context_length=8)
    assert clip.context_length == 8 and clip.model.context_length == 8
    tokens = clip.tokenizer(["a photo of a " + "very " * 20 + "purple star."])
    assert tokens.shape == (1, 8)
    assert tokens[0, -1].item() == clip.tokenizer.eot_token_id
    assert clip.model.encode_text(tokens).shape == (1, 128)


def test_short_run_learns_and_beats_chance(trained):
    summary, out, logs = trained
    assert summary["steps"] == 40 and summary["num_crop_pairs"] == 48
    assert summary["num_image_pairs"] == 24 and summary["num_classes"] == 4
    # pinned on the seeded run: loss falls from ~log-batch level
    assert summary["loss_last"] < 0.75 * summary["loss_first"], summary["loss_history"]
    zs = summary["zero_shot"]
    assert zs["num_all"] == 16 and zs["num_novel"] == 4 and zs["chance"] == 0.25
    assert zs["top1_all"] >= 0.75, zs
    assert zs["top1_novel"] is not None
    assert any("zero-shot top-1" in line for line in logs)
    assert Path(summary["checkpoint"]) == out and out.is_file()
    assert json.loads(Path(summary["config_json"]).read_text())["vision_cfg"]["image_size"] == 32


def test_trained_checkpoint_loads_with_open_clip(trained, shapes_dir):
    summary, out, _ = trained
    register_clip_configs()
    model = open_clip.create_model(SMALL_CLIP, pretrained=str(out), force_image_size=32)
    loaded = load_small_clip(out)
    model.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.encode_image(x), loaded.model.encode_image(x))
    # the saved weights are the evaluated ones: zero-shot accuracy is reproduced
    files = resolve_data_files(shapes_dir)
    loaded.model.train()  # evaluation leaves the model's mode as it found it
    again = evaluate_zero_shot(loaded, files.val_json, files.val_image_roots, novel=files.novel)
    assert again["top1_all"] == summary["zero_shot"]["top1_all"]
    assert loaded.model.training


@pytest.mark.parametrize("name,suffix", [(SMALL_CLIP, ".pt"), (SMALL_CLIP_SIGMOID, ".safetensors")])
def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path, name, suffix):
    torch.manual_seed(1)
    clip = create_small_clip(name)
    with torch.no_grad():  # move BN running statistics and the logit scale off their init
        clip.model.train()
        clip.model.encode_image(torch.rand(4, 3, 64, 64))
        clip.model.logit_scale.fill_(3.0)
    path, cfg_json = save_small_clip(clip, tmp_path / f"teacher{suffix}")
    assert cfg_json == tmp_path / "teacher.json"
    if suffix == ".pt":  # plain dict of tensors, safe to read
        state = torch.load(path, weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    register_clip_configs()
    reloaded = open_clip.create_model(name, pretrained=str(path))
    clip.model.eval()
    reloaded.eval()
    images = torch.rand(2, 3, 64, 64)
    tokens = clip.tokenizer(["a photo of a purple star.", "a red circle."])
    with torch.no_grad():
        assert torch.equal(clip.model.encode_image(images), reloaded.encode_image(images))
        assert torch.equal(clip.model.encode_text(tokens), reloaded.encode_text(tokens))
    assert reloaded.logit_scale.item() == pytest.approx(3.0)
    assert (reloaded.logit_bias is not None) == (name == SMALL_CLIP_SIGMOID)
    assert load_small_clip(path).config_name == name


def test_cli_in_process(shapes_dir, tmp_path, capsys):
    from ovdet.cli import main

    out = tmp_path / "cli_teacher.pt"
    options = "--objective siglip --max-steps 3 --batch-size 8 --image-size 32 --threads 1"
    options += " --num-workers 0 --seed 3 --json"
    argv = ["pretrain-clip", "--data", str(shapes_dir), "--out", str(out), *options.split()]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["objective"] == "siglip" and summary["steps"] == 3
    assert summary["config_name"] == SMALL_CLIP_SIGMOID
    assert set(summary["zero_shot"]) >= {"top1_all", "top1_base", "top1_novel"}
    assert summary["wall_time_s"] > 0 and out.is_file() and out.with_suffix(".json").is_file()


def test_data_errors_name_the_file(shapes_dir, tmp_path):
    bad = json.loads((shapes_dir / "train_all.json").read_text())
    bad["images"][0]["file_name"] = "missing.png"
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps(bad))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_coco_instances(bad_json, [shapes_dir / "images" / "train"])
    bad["images"][0]["file_name"] = "0000.png"
    bad["images"][3]["file_name"] = "gone.png"
    bad_json.write_text(json.dumps(bad))
    with pytest.raises(FileNotFoundError, match="gone.png"):
        read_coco_instances(bad_json, [shapes_dir / "images" / "train"])
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps({"images": [], "annotations": [{"image_id": 1, "id": 1}]}))
    with pytest.raises(KeyError, match=r"caps.json: annotations\[0\]: missing field 'caption'"):
        read_captions(caps, [shapes_dir], fallback_images={1: shapes_dir / "x.png"})
    with pytest.raises(FileNotFoundError, match="split json"):
        resolve_data_files(shapes_dir, split_json=tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="train_all.json"):
        resolve_data_files(tmp_path)
