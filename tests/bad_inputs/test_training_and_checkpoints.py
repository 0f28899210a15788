"""Bad inputs and faults of checkpoint loading, config files and overrides, training, resume
and evaluation. Every case asserts its exact outcome: the right result, or the error type and
a message that names the culprit (file, key, field) and says what to do.

The real-training cases share one 4-iteration run of ``configs/ov_shapes/vild_text_small.py``
on a tiny generated OV-Shapes root (64 px, batch 2, a checkpoint every 2 iterations), copied
before each case damages it.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from torch import nn

from ovdet.cli import main as cli
from ovdet.data.synthetic import generate_ov_shapes, load_split
from ovdet.engine.build import ConfigError, load_config, load_weights
from ovdet.engine.checkpoint import (
    CheckpointFormatError,
    CheckpointMismatchError,
    OVDetectionCheckpointer,
)
from ovdet.engine.resume import claim_run_folder, drop_metrics_from, resume_last_intact
from ovdet.engine.train import check_train_config
from ovdet.text import save_class_embeddings
from ovdet.utils.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
OVS_CONFIG = str(CONFIGS / "ov_shapes" / "vild_text_small.py")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32)


# ------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def _built() -> dict:
    return {}


@pytest.fixture
def make_model(tiny_fpn_config, _built):
    """(embedding width, classes, seed) -> a tiny OV R-CNN (random weights; a fresh copy)."""

    def make(dim: int = 16, classes: int = 3, seed: int = 0):
        if (dim, classes, seed) not in _built:
            torch.manual_seed(seed)
            cfg = tiny_fpn_config(torch.randn(classes, dim))
            _built[dim, classes, seed] = instantiate(cfg.model)
        return copy.deepcopy(_built[dim, classes, seed])

    return make


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict, prefix: str = "") -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def _run(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``ovdet`` in-process; (exit status, its one-line error or "")."""
    capsys.readouterr()
    rc = cli(argv)
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("ovdet ")]
    return rc, lines[-1] if lines else ""


# ------------------------------------------------------------------------------ checkpoints
def _other_model(tmp, model, make=None):
    other = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 10))
    torch.save(other.state_dict(), tmp / "resnet_like.pth")
    return tmp / "resnet_like.pth"


def _wider_embeddings(tmp, model, make):
    torch.save({"model": make(dim=32).state_dict()}, tmp / "wide.pth")
    return tmp / "wide.pth"


def _missing_head(tmp, model, make=None):
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("roi_heads.box_")}
    torch.save(state, tmp / "no_head.pth")
    return tmp / "no_head.pth"


def _extra_keys(tmp, model, make=None):
    state = dict(model.state_dict())
    state["extra_head.fc.weight"] = torch.zeros(2, 2)
    torch.save({"model": state, "iteration": 3}, tmp / "extra.pth")
    return tmp / "extra.pth"


def _write(name: str, data: bytes):
    def write(tmp, model=None, make=None):
        (tmp / name).write_bytes(data)
        return tmp / name

    return write


def _truncated(tmp, model, make=None):
    torch.save(model.state_dict(), tmp / "full.pth")
    data = (tmp / "full.pth").read_bytes()
    (tmp / "cut.pth").write_bytes(data[: len(data) // 2])
    return tmp / "cut.pth"


def _folder(tmp, model, make=None):
    (tmp / "run").mkdir()
    torch.save(model.state_dict(), tmp / "run" / "model_final.pth")
    return tmp / "run"


def _pickle_list(tmp, model, make=None):
    with open(tmp / "weights.pkl", "wb") as f:
        pickle.dump([1, 2, 3], f)
    return tmp / "weights.pkl"


def _torch_list(tmp, model, make=None):
    torch.save([torch.zeros(1)], tmp / "list.pth")
    return tmp / "list.pth"


def _non_tensor(tmp, model, make=None):
    torch.save({"model": {"backbone.note": "hello"}}, tmp / "notes.pth")
    return tmp / "notes.pth"


def _lightning(tmp, model, make=None):
    torch.save({"state_dict": dict(model.state_dict()), "epoch": 3}, tmp / "lightning.pth")
    return tmp / "lightning.pth"


def _empty_state(tmp, model, make=None):
    torch.save({}, tmp / "nothing.pth")
    return tmp / "nothing.pth"


BAD_CHECKPOINTS = [
    # id, writer, error type, substrings of the message (besides the file name)
    (
        "random_other_model",
        _other_model,
        CheckpointMismatchError,
        [
            "does not fit the model (OVRCNN)",
            "parameters of the model missing from the file",
            "0.weight",
        ],
    ),
    (
        "wrong_embedding_width",
        _wider_embeddings,
        CheckpointMismatchError,
        ["with another shape", "roi_heads.box_predictor", "in the file", "in the model"],
    ),
    (
        "missing_keys",
        _missing_head,
        CheckpointMismatchError,
        ["missing from the file (roi_heads.box_", "pass a checkpoint of this model", "partial"],
    ),
    (
        "extra_keys",
        _extra_keys,
        CheckpointMismatchError,
        ["1 entry of the file not in the model (extra_head.fc.weight)"],
    ),
    ("text_file", _write("w.pth", b"hello world\n"), CheckpointFormatError, ["a text file"]),
    ("image_as_pth", _write("w.pth", PNG), CheckpointFormatError, ["it is a PNG image"]),
    (
        "image_suffix",
        _write("photo.png", PNG),
        CheckpointFormatError,
        ["unsupported checkpoint format '.png'", "a PNG image", "expected a .pth"],
    ),
    ("empty_file", _write("w.pth", b""), CheckpointFormatError, ["is empty (0 bytes"]),
    ("truncated_pth", _truncated, CheckpointFormatError, ["truncated or corrupt"]),
    ("directory", _folder, IsADirectoryError, ["is a folder", "model_final.pth"]),
    (
        "corrupt_safetensors",
        _write("w.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage"),
        CheckpointFormatError,
        ["a safetensors file was expected"],
    ),
    ("pickle_of_list", _pickle_list, CheckpointFormatError, ["a pickle of a list"]),
    ("torch_save_of_list", _torch_list, CheckpointFormatError, ["it holds a list"]),
    (
        "git_lfs_pointer",
        _write("w.pth", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n"),
        CheckpointFormatError,
        ["Git LFS pointer", "git lfs pull"],
    ),
    ("non_tensor_entry", _non_tensor, CheckpointFormatError, ["entry 'backbone.note' is a str"]),
    (
        "weights_under_state_dict",
        _lightning,
        CheckpointFormatError,
        ["the weights may be under 'state_dict'"],
    ),
    ("empty_state_dict", _empty_state, CheckpointFormatError, ["holds no weights"]),
    (
        "missing_file",
        lambda tmp, model, make: tmp / "nope.pth",
        FileNotFoundError,
        ["does not exist"],
    ),
]


@pytest.mark.parametrize(
    "writer, error, expected",
    [case[1:] for case in BAD_CHECKPOINTS],
    ids=[case[0] for case in BAD_CHECKPOINTS],
)
def test_bad_checkpoint_is_refused(tmp_path, make_model, writer, error, expected):
    model = make_model()
    path = writer(tmp_path, model, make_model)
    before = _state(model)
    with pytest.raises(error) as info:
        load_weights(model, path, field="--weights")
    message = str(info.value)
    assert message.startswith("--weights") and str(path) in message
    for text in expected:
        assert text in message, message
    assert isinstance(info.value, InputError) or error in (FileNotFoundError, IsADirectoryError)
    assert _same(before, _state(model)), "a refused load changed the model"


def test_mismatch_counts_and_first_keys(tmp_path, make_model):
    model = make_model()
    path = _missing_head(tmp_path, model)
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights(model, path)
    err = info.value
    expected = [k for k in model.state_dict() if k.startswith("roi_heads.box_")]
    assert err.missing == expected and not err.unexpected and not err.shapes
    assert f"{len(expected)} parameters of the model missing from the file" in str(err)
    assert f"({len(expected) - 5} more)" in str(err)


def test_vocabulary_buffers_are_not_missing(tmp_path, make_model):
    """A checkpoint trained with 3 classes loads into a model built with 7 (the vocabulary is
    a non-persistent buffer, supplied by the config)."""
    src, dst = make_model(classes=3, seed=0), make_model(classes=7, seed=1)
    torch.save({"model": src.state_dict(), "iteration": 9}, tmp_path / "m.pth")
    assert load_weights(dst, tmp_path / "m.pth") == {"iteration": 9}
    assert _same(_state(src), _state(dst))
    assert dst.roi_heads.box_predictor.classifier.num_classes == 7


def test_safetensors_and_ddp_prefix_load(tmp_path, make_model):
    from safetensors.torch import save_file

    src, dst = make_model(seed=0), make_model(seed=1)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, tmp_path / "m.safetensors")
    load_weights(dst, tmp_path / "m.safetensors")
    assert _same(_state(src), _state(dst))
    dst = make_model(seed=2)
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, tmp_path / "ddp.pth")
    load_weights(dst, tmp_path / "ddp.pth")
    assert _same(_state(src), _state(dst))


def test_partial_backbone_init(tmp_path, make_model):
    src, dst = make_model(seed=0), make_model(seed=1)
    before = _state(dst)
    prefix = "backbone.bottom_up"
    backbone = {k: v for k, v in src.state_dict().items() if k.startswith(prefix + ".")}
    torch.save(backbone, tmp_path / "backbone.pth")
    with pytest.raises(
        CheckpointMismatchError, match="all it holds lies under 'backbone.bottom_up'"
    ):
        load_weights(dst, tmp_path / "backbone.pth")
    load_weights(dst, tmp_path / "backbone.pth", partial=prefix)
    after = _state(dst)
    assert _same(_state(src), after, prefix)
    rest = [k for k in after if not k.startswith(prefix)]
    assert all(torch.equal(before[k], after[k]) for k in rest)


def test_partial_refuses_keys_outside_its_prefix(tmp_path, make_model):
    src, dst = make_model(seed=0), make_model(seed=1)
    before = _state(dst)
    state = {
        k: v
        for k, v in src.state_dict().items()
        if k.startswith(("backbone.bottom_up.", "roi_heads.box_head."))
    }
    torch.save(state, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights(dst, tmp_path / "mixed.pth", partial="backbone.bottom_up")
    assert "of the file outside ['backbone.bottom_up'] or not in the model" in str(info.value)
    assert "roi_heads.box_head." in str(info.value)
    assert _same(before, _state(dst))


def test_partial_refuses_a_backbone_with_missing_keys(tmp_path, make_model):
    src, dst = make_model(seed=0), make_model(seed=1)
    state = {k: v for k, v in src.state_dict().items() if k.startswith("backbone.bottom_up.")}
    dropped = sorted(k for k in state if k.startswith("backbone.bottom_up.res5."))
    for key in dropped:
        del state[key]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights(dst, tmp_path / "short.pth", partial="backbone.bottom_up")
    # (BatchNorm fills a missing num_batches_tracked itself: not missing)
    expected = [k for k in dst.state_dict() if k in dropped and "num_batches" not in k]
    assert info.value.missing == expected
    assert f"{len(expected)} parameters of the model missing from the file ({expected[0]}" in str(
        info.value
    )


def test_partial_with_a_full_detector_loads_it_whole(tmp_path, make_model):
    src, dst = make_model(seed=0), make_model(seed=1)
    torch.save({"model": src.state_dict()}, tmp_path / "model_final.pth")
    load_weights(dst, tmp_path / "model_final.pth", partial=["backbone.bottom_up"])
    assert _same(_state(src), _state(dst))


def test_partial_prefix_that_names_nothing(tmp_path, make_model):
    model = make_model()
    torch.save(model.state_dict(), tmp_path / "m.pth")
    with pytest.raises(
        InputError, match=r"no parameter of the model lies under \['backbone.bottomup'\]"
    ):
        load_weights(model, tmp_path / "m.pth", partial="backbone.bottomup")


def test_model_zoo_backbone_pickle_with_imagenet_classifier(tmp_path, make_model):
    """A detectron2 model-zoo .pkl (names matched by heuristics) carrying an ImageNet
    classifier: refused as a full model, loaded as a backbone init (classifier ignored)."""
    src, dst = make_model(seed=0), make_model(seed=1)
    weights = {
        k.removeprefix("backbone.bottom_up."): v.numpy()
        for k, v in src.state_dict().items()
        if k.startswith("backbone.bottom_up.")
    }
    weights["fc1000.weight"] = torch.zeros(1000, 8).numpy()
    path = tmp_path / "R-18.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": weights, "__author__": "test", "matching_heuristics": True}, f)
    with pytest.raises(CheckpointMismatchError, match="fc1000.weight"):
        load_weights(dst, path)
    load_weights(dst, path, partial="backbone.bottom_up")
    assert _same(_state(src), _state(dst), "backbone.bottom_up")


def _caffe2_name(key: str) -> str:
    """detectron2 ResNet name -> the Caffe2 name of MSRA's ImageNet R-50.pkl."""
    stem = {"conv1.weight": "conv1_w", "conv1.norm.weight": "res_conv1_bn_s"}
    if key.startswith("stem."):
        return {**stem, "conv1.norm.bias": "res_conv1_bn_b"}[key.removeprefix("stem.")]
    stage, block, conv, rest = key.split(".", 3)
    branch = {"conv1": "branch2a", "conv2": "branch2b", "shortcut": "branch1"}[conv]
    suffix = {"weight": "_w", "norm.weight": "_bn_s", "norm.bias": "_bn_b"}[rest]
    return f"{stage}_{block}_{branch}{suffix}"


def test_caffe2_imagenet_backbone_is_a_partial_init(tmp_path, tiny_fpn_config):
    """An ImageNet backbone with Caffe2 names (as detectron2's R-50.pkl: no BN statistics, an
    fc1000 classifier) initialises a FrozenBN backbone through train.init_partial."""
    cfg = tiny_fpn_config(torch.randn(3, 16))
    cfg.model.backbone.bottom_up.stem.norm = "FrozenBN"
    cfg.model.backbone.bottom_up.stages.norm = "FrozenBN"
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    before = _state(model)
    prefix = "backbone.bottom_up."
    weights = {
        _caffe2_name(k.removeprefix(prefix)): (v + 1.0).numpy()
        for k, v in model.state_dict().items()
        if k.startswith(prefix) and "running_" not in k
    }
    weights["fc1000_w"] = torch.zeros(1000, 8).numpy()
    with open(tmp_path / "R-18.pkl", "wb") as f:
        pickle.dump(weights, f)
    with pytest.raises(
        CheckpointMismatchError, match=r"1 entry of the file not in the model \(fc1000.weight\)"
    ):
        load_weights(model, tmp_path / "R-18.pkl")
    load_weights(model, tmp_path / "R-18.pkl", partial="backbone.bottom_up")
    after = _state(model)
    for key in after:
        if key.startswith(prefix) and "running_" not in key:
            assert torch.equal(after[key], before[key] + 1.0), key
        elif not key.startswith(prefix):
            assert torch.equal(after[key], before[key]), key


# ------------------------------------------------------------------------------ overrides
OVERRIDES = [
    # id, override, substrings of the ConfigError message
    ("typo_key", "train.max_itr=3", ["train.max_itr is not a key", "did you mean train.max_iter?"]),
    (
        "nested_typo",
        "model.roi_heads.box_predictor.test_scor_thresh=0.3",
        ["did you mean model.roi_heads.box_predictor.test_score_thresh"],
    ),
    ("unbalanced_list", "train.max_iter=[1,2", ["'train.max_iter=[1,2'", "KEY=VALUE"]),
    (
        "none_value",
        "train.init_checkpoint=None",
        ["None is written null", "train.init_checkpoint=null"],
    ),
    (
        "new_key_without_plus",
        "train.new_field=1",
        ["train.new_field is not a key", "+train.new_field=1"],
    ),
    ("plus_on_existing_key", "+train.max_iter=3", ["train.max_iter exists already"]),
    ("no_equal_sign", "train.max_iter", ["no '=' in it", "train.max_iter=100"]),
    ("text_for_a_number", "train.max_iter=abc", ["train.max_iter is a number (1400)"]),
    ("sweep", "train.max_iter=1,2", ["a sweep in Hydra's syntax", "[a,b]"]),
    ("tuple", "model.pixel_mean=(1,2,3)", ["tuples are written as lists"]),
    ("deletion", "~train.seed", ["deleting keys is not supported", "KEY=null"]),
    ("flag_as_override", "--resume", ["a command-line option, not an override"]),
    ("key_under_a_value", "train.max_iter.x=1", ["train.max_iter is a value (int)"]),
]


@pytest.mark.parametrize(
    "override, expected", [c[1:] for c in OVERRIDES], ids=[c[0] for c in OVERRIDES]
)
def test_bad_override_is_refused(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(OVS_CONFIG, [override])
    message = str(info.value)
    assert message.startswith(f"config override {override!r}")
    for text in expected:
        assert text in message, message


def test_overrides_that_add_keys_on_purpose():
    cfg = load_config(
        OVS_CONFIG,
        [
            "+train.new_field=3",
            "++train.other=[a,b]",
            "train.max_iter=7",
            "train.init_checkpoint=null",
        ],
    )
    assert cfg.train.new_field == 3 and list(cfg.train.other) == ["a", "b"]
    assert cfg.train.max_iter == 7 and cfg.train.init_checkpoint is None


# ------------------------------------------------------------------------------ config files
def _config_file(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


CONFIG_FILES = [
    # id, file name, content (None: do not create), substrings of the one-line error
    ("missing", "absent.py", None, ["config file", "absent.py not found"]),
    (
        "not_python",
        "bad.py",
        "model = dict(\nthis is not python\n",
        ["is not valid Python", "(line"],
    ),
    (
        "raises_when_executed",
        "boom.py",
        "x = 1\nraise RuntimeError('no data here')\n",
        ["raised RuntimeError when executed (line 2): no data here"],
    ),
    (
        "imports_missing_module",
        "imp.py",
        "import not_a_module_ovdet\n",
        ["raised ModuleNotFoundError", "not_a_module_ovdet"],
    ),
    (
        "no_model",
        "nomodel.py",
        "train = dict(max_iter=3)\n",
        ["has no 'model' field (its top-level names: train)"],
    ),
    ("wrong_suffix", "config.txt", "model = dict()\n", ["is not a LazyConfig"]),
    ("folder", "cfgdir", "", ["is a folder"]),
]


@pytest.mark.parametrize(
    "name, text, expected", [c[1:] for c in CONFIG_FILES], ids=[c[0] for c in CONFIG_FILES]
)
def test_bad_config_file_is_one_clear_error(tmp_path, capsys, name, text, expected):
    path = tmp_path / name
    if name == "cfgdir":
        path.mkdir()
    elif text is not None:
        _config_file(tmp_path, name, text)
    rc, line = _run(["train", "--config-file", str(path), "train.max_iter=1"], capsys)
    assert rc == 2
    assert line.startswith("ovdet train: error: ") and str(path) in line
    for text_ in expected:
        assert text_ in line, line


# ------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def ovs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_train_data")
    generate_ov_shapes(root, num_train=4, num_val=2, seed=5, progress=False)
    names = [c["name"] for c in load_split(root)["categories"]]
    g = torch.Generator().manual_seed(0)
    save_class_embeddings(
        root / "class_embeddings.pt", torch.randn(len(names), 16, generator=g), names
    )
    return root


def _tiny(root: Path, out: Path, max_iter: int = 4) -> list[str]:
    return [
        f"ov_shapes.root={root}",
        "ov_shapes.prefix=bad_inputs_ovs",
        "ov_shapes.image_size=64",
        f"train.max_iter={max_iter}",
        f"train.output_dir={out}",
        "train.checkpointer.period=2",
        "train.checkpointer.max_to_keep=5",
        "train.log_period=2",
        "train.device=cpu",
        "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0",
        "dataloader.test.num_workers=0",
    ]


@pytest.fixture(scope="module")
def trained(ovs_root, tmp_path_factory) -> Path:
    """A finished 4-iteration run: model_0000001, model_0000003, model_final, metrics.json."""
    out = tmp_path_factory.mktemp("bad_train_run") / "out"
    assert cli(["train", "--config-file", OVS_CONFIG, *_tiny(ovs_root, out)]) == 0
    return out


def _copy_run(trained: Path, tmp: Path) -> Path:
    out = tmp / "out"
    shutil.copytree(trained, out)
    return out


def _iterations(out: Path) -> tuple[list[int], list[int]]:
    """(iterations logged with training losses, iterations logged with evaluation results)."""
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    return (
        [m["iteration"] for m in lines if "total_loss" in m],
        [m["iteration"] for m in lines if "bbox/AP50" in m],
    )


def test_run_checkpoints_periodically(trained):
    names = sorted(p.name for p in trained.glob("model_*.pth"))
    assert names == ["model_0000001.pth", "model_0000003.pth", "model_final.pth"]
    assert (trained / "last_checkpoint").read_text() == "model_final.pth"
    assert _iterations(trained) == ([1, 3], [4])


def test_resume_falls_back_past_a_truncated_last_checkpoint(
    trained, ovs_root, tmp_path, capsys, caplog
):
    out = _copy_run(trained, tmp_path)
    data = (out / "model_final.pth").read_bytes()
    (out / "model_final.pth").write_bytes(data[: len(data) // 3])
    # options after the overrides (`... train.max_iter=6 --resume`)
    argv = ["train", "--config-file", OVS_CONFIG, *_tiny(ovs_root, out, max_iter=6), "--resume"]
    with caplog.at_level(logging.INFO, logger="ovdet.engine.resume"):
        rc, line = _run(argv, capsys)
    assert rc == 0, line
    logs = "\n".join(r.getMessage() for r in caplog.records if r.name == "ovdet.engine.resume")
    assert f"resuming from {out / 'model_0000003.pth'}" in logs
    assert "skipped newer unreadable checkpoints: model_final.pth (truncated or corrupt" in logs
    # resumed after iteration 3: iterations 4, 5 trained once, evaluation at 6 only
    assert _iterations(out) == ([1, 3, 5], [6])
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    torch.load(out / "model_final.pth", weights_only=True)  # intact again


def test_resume_with_every_checkpoint_broken_is_one_clear_error(
    trained, ovs_root, tmp_path, capsys
):
    out = _copy_run(trained, tmp_path)
    (out / "model_final.pth").write_bytes(b"")
    for name in ("model_0000001.pth", "model_0000003.pth"):
        (out / name).write_bytes((out / name).read_bytes()[:1000])
    argv = ["train", "--config-file", OVS_CONFIG, "--resume", *_tiny(ovs_root, out, max_iter=6)]
    rc, line = _run(argv, capsys)
    assert rc == 2
    assert f"--resume: no intact checkpoint in {out}: model_final.pth (empty file)" in line
    assert "model_0000003.pth (truncated or corrupt" in line
    assert "model_0000001.pth (truncated or corrupt" in line
    assert "Move these files away" in line


def test_resume_after_a_kill_does_not_repeat_metrics(trained, ovs_root, tmp_path, capsys):
    """A run killed after iteration 3 had saved model_0000001 only (period 2, the iteration-3
    checkpoint lost) and logged iterations 1 and 3, plus a line cut by the kill."""
    out = _copy_run(trained, tmp_path)
    (out / "model_0000003.pth").unlink()
    (out / "model_final.pth").unlink()
    (out / "last_checkpoint").write_text("model_0000001.pth")
    lines = (out / "metrics.json").read_text().splitlines()
    (out / "metrics.json").write_text("\n".join(lines[:2]) + '\n{"iteration": 4, "total_lo')
    argv = ["train", "--config-file", OVS_CONFIG, *_tiny(ovs_root, out), "--resume"]
    rc, line = _run(argv, capsys)
    assert rc == 0, line
    assert _iterations(out) == ([1, 3], [4])
    for text in (out / "metrics.json").read_text().splitlines():
        json.loads(text)  # the cut line is gone


def test_drop_metrics_and_resume_without_checkpoints(tmp_path, make_model):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text(
        "".join(json.dumps({"iteration": i, "loss": 1.0}) + "\n" for i in (1, 3, 5, 7)) + "oops\n"
    )
    assert drop_metrics_from(out, 4) == 3
    kept = (out / "metrics.json").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in kept] == [1, 3]
    checkpointer = OVDetectionCheckpointer(make_model(), str(out))
    assert resume_last_intact(checkpointer) is None  # nothing to resume: start from scratch


def test_claimed_folder_resumes_only_its_own_checkpoints(tmp_path):
    out = tmp_path / "run"
    key = {"method": "vild_text", "config": "abc", "seeds": (0, 1)}
    assert claim_run_folder(out, key) is False  # a new folder: train from scratch
    assert json.loads((out / "started.json").read_text())["key"]["config"] == "abc"
    assert claim_run_folder(out, key) is False  # claimed, but no checkpoint yet
    (out / "model_0000099.pth").write_bytes(b"ckpt")
    (out / "last_checkpoint").write_text("model_0000099.pth")
    assert claim_run_folder(out, key) is True  # killed after a checkpoint of this key: resume
    assert (out / "model_0000099.pth").is_file()
    # another key (a changed config): the old run's checkpoints can never be resumed from
    assert claim_run_folder(out, {**key, "config": "def"}) is False
    assert not list(out.glob("model_*.pth")) and not (out / "last_checkpoint").exists()
    assert json.loads((out / "started.json").read_text())["key"]["config"] == "def"
    (out / "model_final.pth").write_bytes(b"ckpt")
    (out / "started.json").write_text("{")  # torn claim: not trusted
    assert claim_run_folder(out, {**key, "config": "def"}) is False
    assert not (out / "model_final.pth").exists()


def test_typo_override_trains_nothing(ovs_root, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["train", "--config-file", OVS_CONFIG, *_tiny(ovs_root, out), "train.max_itr=3"]
    rc, line = _run(argv, capsys)
    assert rc == 2 and "did you mean train.max_iter?" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "checkpointer, expected",
    [
        ("train.checkpointer.period=0", "train.checkpointer.period must be a whole number"),
        ("train.checkpointer.max_to_keep=0", "train.checkpointer.max_to_keep must be >= 1"),
    ],
    ids=["period_0", "max_to_keep_0"],
)
def test_bad_checkpointer_settings(checkpointer, expected):
    cfg = load_config(OVS_CONFIG, [checkpointer])
    with pytest.raises(InputError, match=expected):
        check_train_config(cfg)


def test_checkpointing_changes_no_trained_number(ovs_root, tmp_path):
    """Saving a checkpoint every iteration or never trains the same weights (saving draws no
    random number and does not touch the weights): the benchmark's checkpoint period is free."""
    from ovdet.engine.train import train_and_evaluate

    finals = []
    for period in (1, 1000):
        out = tmp_path / f"p{period}"
        cfg = load_config(OVS_CONFIG, _tiny(ovs_root, out, max_iter=3))
        cfg.train.checkpointer = dict(period=period, max_to_keep=1)
        del cfg.dataloader.evaluator  # no evaluation: weights only
        train_and_evaluate(cfg)
        finals.append(torch.load(out / "model_final.pth", weights_only=True)["model"])
    assert finals[0].keys() == finals[1].keys()
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


# ------------------------------------------------------------------------------ evaluation
NO_TEST_SET = """
from detectron2.config import LazyConfig
_base = LazyConfig.load({config!r})
model, train, ov_shapes = _base.model, _base.train, _base.ov_shapes
dataloader = dict(train=_base.dataloader.train)
"""

EVAL_CASES = [
    # id, checkpoint (a writer of tmp -> path, "" or None: leave the config's), substrings
    ("empty_init_checkpoint", "", ["train.init_checkpoint is empty", "model_final.pth"]),
    (
        "missing_init_checkpoint",
        lambda tmp: tmp / "gone.pth",
        ["train.init_checkpoint: checkpoint", "gone.pth does not exist"],
    ),
    (
        "text_init_checkpoint",
        lambda tmp: _write("notes.pth", b"not weights\n")(tmp),
        ["train.init_checkpoint:", "notes.pth", "a text file"],
    ),
    ("no_test_set", "no_test", ["no test set: dataloader.test / dataloader.evaluator missing"]),
]


@pytest.mark.parametrize(
    "checkpoint, expected", [c[1:] for c in EVAL_CASES], ids=[c[0] for c in EVAL_CASES]
)
def test_eval_bad_inputs(ovs_root, tmp_path, capsys, checkpoint, expected):
    config = OVS_CONFIG
    overrides = _tiny(ovs_root, tmp_path / "out")
    if checkpoint == "no_test":
        config = str(_config_file(tmp_path, "c.py", NO_TEST_SET.format(config=OVS_CONFIG)))
        (tmp_path / "m.pth").write_bytes(b"x")
        overrides = [f"train.init_checkpoint={tmp_path / 'm.pth'}"]
    elif callable(checkpoint):
        overrides.append(f"train.init_checkpoint={checkpoint(tmp_path)}")
    rc, line = _run(["eval", "--config-file", config, *overrides], capsys)
    assert rc == 2 and line.startswith("ovdet eval: error: ")
    for text in expected:
        assert text in line, line


def test_eval_refuses_a_backbone_only_checkpoint(trained, ovs_root, tmp_path, capsys):
    state = torch.load(trained / "model_final.pth", weights_only=True)["model"]
    backbone = {k: v for k, v in state.items() if k.startswith("backbone.bottom_up.")}
    torch.save(backbone, tmp_path / "backbone.pth")
    overrides = [
        *_tiny(ovs_root, tmp_path / "out"),
        f"train.init_checkpoint={tmp_path / 'backbone.pth'}",
    ]
    rc, line = _run(["eval", "--config-file", OVS_CONFIG, *overrides], capsys)
    assert rc == 2
    assert "does not fit the model (OVRCNN)" in line
    assert "all it holds lies under 'backbone.bottom_up'" in line


# ------------------------------------------------------------------------------ configs
ALL_CONFIGS = sorted(
    str(p.relative_to(CONFIGS))
    for d in ("ov_shapes", "ov_coco", "ov_lvis")
    for p in (CONFIGS / d).glob("*.py")
)


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_every_config_checkpoints_within_its_run(name):
    cfg = LazyConfig.load(str(CONFIGS / name))
    period, keep = cfg.train.checkpointer.period, cfg.train.checkpointer.max_to_keep
    if cfg.train.max_iter > 0:  # 0: the config evaluates its initial weights, trains nothing
        assert 1 <= period <= cfg.train.max_iter // 5, "a killed run would lose too much"
    assert 1 <= keep <= 3
    check_train_config(cfg)
    if str(cfg.train.init_checkpoint).endswith("R-50.pkl"):
        # an ImageNet backbone: the config says the load is a backbone initialisation
        assert cfg.train.init_partial == "backbone.bottom_up"
