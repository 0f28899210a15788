"""ovdet self-train end to end on a tiny OV-Shapes world: rounds, files, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate

from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes, load_split
from ovdet.text import save_class_embeddings
from ovdet.utils.errors import InputError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "ov_shapes"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A 6 + 2 image world, random class embeddings, a random-weight ViLD-text teacher."""
    root = tmp_path_factory.mktemp("st_world")
    cfg = OVShapesConfig(image_size=64)
    generate_ov_shapes(root, num_train=6, num_val=2, seed=3, config=cfg, progress=False)
    names = [c["name"] for c in load_split(root)["categories"]]
    emb = root / "class_embeddings.pt"
    g = torch.Generator().manual_seed(0)
    save_class_embeddings(emb, torch.randn(len(names), 16, generator=g), names)
    overrides = [
        f"ov_shapes.root={root}",
        f"ov_shapes.embeddings={emb}",
        "ov_shapes.prefix=st_test",
        "ov_shapes.image_size=64",
        "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0",
        "dataloader.test.num_workers=0",
    ]
    cfg = LazyConfig.load(str(CONFIGS / "vild_text_small.py"))
    from ovdet.engine.build import apply_overrides

    cfg = apply_overrides(cfg, overrides)
    weights = root / "teacher.pth"
    torch.save({"model": instantiate(cfg.model).state_dict()}, weights)
    return {"root": root, "overrides": overrides, "weights": weights, "names": names}


def _run(world, out, **kw):
    from ovdet.self_train import run_self_train

    options = dict(
        config=CONFIGS / "vild_text_small.py",
        weights=world["weights"],
        output=out,
        overrides=world["overrides"],
        high=0.03,  # a random teacher scores about 1 / 37 per class
        low=0.0,
        max_iter=2,
        device="cpu",
        progress=False,
    )
    options.update(kw)
    return run_self_train(**options)


def test_two_rounds_files_and_resume(world, tmp_path, monkeypatch):
    out = tmp_path / "st"
    import ovdet.engine.train as train_mod

    real = train_mod.train_and_evaluate
    calls = {"label": 0}
    import ovdet.pseudo_label as pl

    real_label = pl.run_pseudo_label

    def counting_label(**kw):
        calls["label"] += 1
        return real_label(**kw)

    monkeypatch.setattr(pl, "run_pseudo_label", counting_label)

    def killed(cfg, resume=False):
        raise KeyboardInterrupt  # the run dies while training round 1

    monkeypatch.setattr(train_mod, "train_and_evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(world, out, rounds=2)
    manifest = json.loads((out / "self_train.json").read_text())
    assert set(manifest["rounds"]["1"]) == {"labels", "merge"}
    assert calls["label"] == 1

    monkeypatch.setattr(train_mod, "train_and_evaluate", real)
    result = _run(world, out, rounds=2)
    assert calls["label"] == 2  # round 1's labels were not made again; round 2's were
    assert [r["round"] for r in result["rounds"]] == [1, 2]
    r1, r2 = result["rounds"]
    assert r2["teacher"] == r1["weights"] and Path(r1["weights"]).is_file()
    for r in result["rounds"]:
        assert {"AP50_base", "AP50_novel", "segm_AP50_novel"} <= set(r["metrics"])
    # the merged training set: gold boxes + pseudo labels of novel classes, ignore regions
    merged = json.loads((out / "round_1" / "train.json").read_text())
    gold = json.loads((world["root"] / "train_base.json").read_text())
    assert merged["images"] == gold["images"]
    assert [c["name"] for c in merged["categories"]] == world["names"]
    novel = set(load_split(world["root"])["novel"])
    pseudo = [a for a in merged["annotations"] if a.get("pseudo")]
    assert pseudo and all(world["names"][a["category_id"] - 1] in novel for a in pseudo)
    stats = r1["merge"]
    assert stats["gold"] == len(gold["annotations"])
    assert stats["pseudo_boxes"] + stats["ignore_regions"] == len(pseudo)
    assert (out / "summary.json").is_file() and (out / "round_2" / "result.json").is_file()

    # finished: the same command does nothing again
    again = _run(world, out, rounds=2)
    assert calls["label"] == 2 and again["rounds"] == result["rounds"]


def test_other_settings_refused_then_overwrite(world, tmp_path, monkeypatch):
    import ovdet.engine.train as train_mod

    def killed(cfg, resume=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "train_and_evaluate", killed)
    out = tmp_path / "st"
    with pytest.raises(KeyboardInterrupt):
        _run(world, out, max_iter=1)
    with pytest.raises(InputError, match="other settings .*max_iter: 1 -> 2"):
        _run(world, out, max_iter=2)
    (out / "round_1" / "stray.txt").write_text("x")
    with pytest.raises(KeyboardInterrupt):
        _run(world, out, max_iter=2, overwrite=True)
    manifest = json.loads((out / "self_train.json").read_text())
    assert manifest["settings"]["max_iter"] == 2 and not (out / "round_1" / "stray.txt").exists()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"rounds": 0}, "--rounds must be an integer >= 1"),
        ({"high": 0.1, "low": 0.2}, "--low .* is above --high"),
        ({"pseudo_classes": "base"}, "--pseudo-classes must be one of"),
        ({"init": "imagenet"}, "--student must be one of"),
        ({"weights": "/nonexistent.pth"}, "--weights /nonexistent.pth not found"),
    ],
)
def test_bad_options_refused_before_work(world, tmp_path, kw, message):
    with pytest.raises((InputError, FileNotFoundError), match=message):
        _run(world, tmp_path / "st", **kw)
    assert not (tmp_path / "st" / "self_train.json").exists()


@pytest.mark.parametrize("name", ["vild_ensemble_small.py", "rkd_ensemble_small.py"])
def test_student_config_of_ensembles_trains_every_class(world, tmp_path, name):
    from ovdet.engine.build import apply_overrides
    from ovdet.self_train import gold_dataset, student_config

    cfg = apply_overrides(LazyConfig.load(str(CONFIGS / name)), world["overrides"])
    _, meta = gold_dataset(cfg)
    student = student_config(
        cfg,
        dataset="st_test_student",
        train_json=meta.json_file,
        image_root=meta.image_root,
        novel=load_split(world["root"])["novel"],
        output_dir=str(tmp_path),
        init="teacher",
        teacher_weights=str(world["weights"]),
    )
    assert student.dataloader.train.mapper.crowd_as_ignore is True
    assert student.train.init_checkpoint == str(world["weights"])
    model = instantiate(student.model)
    model.train()
    assert model.roi_heads.box_predictor.classifier.num_classes == len(world["names"])


def test_control_trains_gold_only_with_the_students_schedule(world, tmp_path, monkeypatch):
    import ovdet.engine.train as train_mod
    import ovdet.pseudo_label as pl

    out = tmp_path / "st"
    first = _run(world, out)  # a finished run without the control
    assert "control" not in first["rounds"][0]

    real = train_mod.train_and_evaluate
    seen = []

    def spy(cfg, resume=False):
        seen.append(cfg)
        return real(cfg, resume=resume)

    def no_labels(**kw):
        raise AssertionError("the finished round was labelled again")

    monkeypatch.setattr(train_mod, "train_and_evaluate", spy)
    monkeypatch.setattr(pl, "run_pseudo_label", no_labels)
    result = _run(world, out, control=True)  # adds the control only
    assert len(seen) == 1
    ctl = seen[0]
    # the teacher's own data and classifier, the student's start, schedule and seed
    from ovdet.self_train import gold_dataset

    assert gold_dataset(ctl)[0] == "st_test_train_base"
    assert not ctl.dataloader.train.mapper.get("crowd_as_ignore", False)
    emb = ctl.model.roi_heads.box_predictor.classifier
    assert emb.train_embeddings != emb.test_embeddings
    assert ctl.train.init_checkpoint == str(world["weights"])
    assert ctl.train.max_iter == 2 and ctl.train.output_dir == str(out / "round_1" / "control")
    r1 = result["rounds"][0]
    assert r1["metrics"] == first["rounds"][0]["metrics"]  # the student untouched
    assert {"AP50_base", "AP50_novel"} <= set(r1["control"]["metrics"])
    assert Path(r1["control"]["weights"]).is_file()
    assert (out / "round_1" / "control" / "result.json").is_file()

    # round 2's control starts from round 1's control
    monkeypatch.undo()  # labelling allowed again (round 2)
    monkeypatch.setattr(train_mod, "train_and_evaluate", spy)
    seen.clear()
    result = _run(world, out, rounds=2, control=True)
    assert [c.train.output_dir for c in seen] == [
        str(out / "round_2" / "model"),
        str(out / "round_2" / "control"),
    ]
    assert seen[1].train.init_checkpoint == r1["control"]["weights"]
    assert seen[0].train.init_checkpoint == r1["weights"]


def test_control_refused_with_a_scratch_student(world, tmp_path):
    with pytest.raises(InputError, match="--control trains the teacher"):
        _run(world, tmp_path / "st", control=True, init="scratch")
