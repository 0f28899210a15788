"""The named models: shipped bundles listed with their metrics, the default model, errors
for unknown names and broken bundles, the size budget, and ``ovdet models``."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from ovdet.cli import main as cli
from ovdet.model_zoo import (
    BUNDLE_FILES,
    DEFAULT_MODEL,
    ModelSpec,
    UnknownModelError,
    get_model,
    list_models,
    shipped_models_dir,
    verify_bundle,
)
from ovdet.utils.errors import InputError

ASSET_BUDGET = 25e6  # bytes: every shipped asset together (issue 15)


def test_shipped_bundles_listed_first_default_first():
    specs = list_models()
    names = [s.name for s in specs]
    assert names[0] == DEFAULT_MODEL
    assert {"ov-shapes-rkd-ensemble", "ov-shapes-vild-text"} <= set(names)
    for spec in specs:
        assert isinstance(spec, ModelSpec) and spec.kind == "bundle"
        assert spec.path == shipped_models_dir() / spec.name
        assert len(spec.classes) == 36 and len(spec.novel) == 9 and len(spec.base) == 27
        assert set(spec.base) | set(spec.novel) == set(spec.classes)
        assert spec.image_size == 160 and spec.description
        assert spec.source.startswith("ovdet bench ov-shapes")
        for key in ("AP50_base", "AP50_novel", "AP50", "AP"):
            assert 0.0 < spec.metrics[key] <= 100.0
        assert "val" in spec.metrics["dataset"]


def test_default_model_is_the_best_shipped():
    default = get_model()
    assert default == get_model(DEFAULT_MODEL) and default.name == "ov-shapes-rkd-ensemble"
    manifest = verify_bundle(default.path)
    assert manifest["method"] == "rkd_ensemble"
    assert manifest["metrics"]["training_run"]["rkd_ensemble"]["iterations"] == 1400
    best = max(list_models(), key=lambda s: s.metrics["AP50_novel"])
    assert best.name == DEFAULT_MODEL


def test_shipped_assets_intact_and_within_budget():
    total = sum(p.stat().st_size for p in shipped_models_dir().parent.rglob("*") if p.is_file())
    assert total <= ASSET_BUDGET, f"ovdet/assets holds {total / 1e6:.1f} MB"
    for spec in list_models():
        manifest = verify_bundle(spec.path)
        assert set(manifest["files"]) == set(BUNDLE_FILES)
        assert manifest["name"] == spec.name == spec.path.name
        assert (spec.path / "README.md").is_file()


def test_model_by_path():
    folder = shipped_models_dir() / "ov-shapes-vild-text"
    assert get_model(folder) == get_model("ov-shapes-vild-text")
    assert get_model(str(folder / "manifest.json")).name == "ov-shapes-vild-text"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownModelError) as err:
        get_model("ov-shapes-best")
    message = str(err.value)
    assert "unknown model 'ov-shapes-best'" in message
    for spec in list_models():
        assert spec.name in message
    assert "OVDET_MODELS" in message
    with pytest.raises(FileNotFoundError, match=r"no/such/bundle: no such bundle folder"):
        get_model("no/such/bundle")


def test_broken_bundles_are_refused(tmp_path):
    bundle = tmp_path / "mine"
    shutil.copytree(shipped_models_dir() / "ov-shapes-vild-text", bundle)
    spec = get_model(bundle)
    assert spec.kind == "bundle" and spec.path == bundle
    (bundle / "teacher_text.json").write_text("{}")  # replaced
    with pytest.raises(InputError, match=r"teacher_text\.json does not match its sha256"):
        spec.load(device="cpu")
    (bundle / "detector.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"detector\.safetensors not found"):
        verify_bundle(bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json not found, so this is not a bundle"):
        get_model(bundle)
    (bundle / "manifest.json").write_text('{"format": 7}')
    with pytest.raises(InputError, match="has format 7"):
        get_model(bundle)


def test_models_command(capsys):
    assert cli(["models"]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["name", "kind", "classes", "AP50"]
    default = get_model()
    row = next(line for line in lines if line.startswith(DEFAULT_MODEL))
    assert " * " in row and "bundle" in row and "36 (9 novel)" in row
    assert f"{default.metrics['AP50_base']:.1f}" in row
    assert f"{default.metrics['AP50_novel']:.1f}" in row
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli(["models", "--json"]) == 0
    records = json.loads(buf.getvalue())
    assert [r["name"] for r in records] == [s.name for s in list_models()]
    assert records[0]["default"] is True and records[0]["classes"] == default.classes
    assert records[0]["metrics"]["AP50_novel"] == default.metrics["AP50_novel"]
