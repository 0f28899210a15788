"""``ovdet env``: the collected facts and both output formats."""

from __future__ import annotations

import json

import pytest

from ovdet import __version__, cli
from ovdet.compat import detectron2_has_compiled_ops, env

EXPECTED_KEYS = [
    "python",
    "platform",
    "ovdet",
    "torch",
    "torch.cuda_available",
    "torch.cuda_version",
    "gpus",
    "torchvision",
    "detectron2",
    "detectron2.install",
    "detectron2.path",
    "open_clip",
    "transformers",
    "segment_anything",
    "pycocotools",
    "lvis",
    "albumentations",
    "numpy",
    "Pillow",
]


def test_json_output(capsys):
    import torch
    import torchvision

    assert cli.main(["env", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == EXPECTED_KEYS
    assert report["ovdet"] == __version__
    assert report["torch"] == torch.__version__
    assert report["torchvision"] == torchvision.__version__
    assert report["torch.cuda_available"] is torch.cuda.is_available()
    assert isinstance(report["gpus"], list)
    expected_kind = env.INSTALL_COMPILED if detectron2_has_compiled_ops() else env.INSTALL_FALLBACK
    assert report["detectron2.install"] == expected_kind
    assert report["detectron2.path"].endswith("detectron2")
    assert report["segment_anything"] != env.NOT_INSTALLED  # a dependency without __version__


def test_table_output_is_aligned(capsys):
    assert cli.main(["env"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == EXPECTED_KEYS
    value_columns = {len(line) - len(line[len(line.split()[0]) :].lstrip()) for line in lines}
    assert len(value_columns) == 1  # every value starts in the same column
    table = dict(line.split(None, 1) for line in lines)
    assert table["torch.cuda_available"] in ("yes", "no")
    assert table["ovdet"] == __version__


def test_missing_packages_are_reported_not_raised(monkeypatch):
    real_installed = env._installed
    missing = {"lvis", "detectron2", "segment_anything"}
    monkeypatch.setattr(
        env, "_installed", lambda name: name not in missing and real_installed(name)
    )
    report = env.collect_env()
    assert report["lvis"] == env.NOT_INSTALLED
    assert report["segment_anything"] == env.NOT_INSTALLED
    assert report["detectron2"] == env.NOT_INSTALLED
    assert report["detectron2.install"] == env.NOT_INSTALLED
    assert report["numpy"] != env.NOT_INSTALLED


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as info:
        env.main(["--help"])
    assert info.value.code == 0
    assert "--json" in capsys.readouterr().out
