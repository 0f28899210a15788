"""The demo assets shipped in ``ovdet/assets/ov_shapes``: format, export and loading.

Files (all written by :func:`export_demo_assets`, normally through
``ovdet bench ov-shapes --export-demo ovdet/assets/ov_shapes``)::

    detector.safetensors    state_dict of the trained ViLD-text detector, floats stored fp16
    detector.yaml           its model LazyConfig (vocabulary fields left empty)
    teacher_text.safetensors  the CLIP teacher's text tower, floats fp16; the token embedding
                            is stored as the rows of the tokens in the teacher's training text
                            (``token_embedding.rows`` + ``token_embedding.ids``)
    teacher_text.json       the teacher's open_clip model config
    manifest.json           sha256 and size of each file, the command that made them, the
                            class split, generator parameters, prompt templates and the
                            metrics of the export run (fp16 model re-evaluated)
    README.md               the same, for people

Why fp16 and token rows: the detector (2.4 M parameters) and the text tower (0.6 M, plus a
49408 x 128 token table) would be ~37 MB in fp32. Token rows outside the teacher's training
text never received a gradient, so they carry no meaning; they load as zeros. Everything is
restored to fp32 on load.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ovdet.utils.io import atomic_write, atomic_write_text, file_sha256, write_json

__all__ = [
    "DEMO_FILES",
    "DemoBundle",
    "default_assets_dir",
    "export_demo_assets",
    "load_demo_assets",
    "verify_assets",
]

ASSET_FORMAT = 1
DEMO_FILES = (
    "detector.safetensors",
    "detector.yaml",
    "teacher_text.safetensors",
    "teacher_text.json",
)
_TOKEN_KEY = "token_embedding.weight"
_ROWS_KEY = "token_embedding.rows"
_IDS_KEY = "token_embedding.ids"


def default_assets_dir() -> Path:
    """``ovdet/assets/ov_shapes`` inside the installed package."""
    return Path(__file__).resolve().parents[1] / "assets" / "ov_shapes"


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
        .contiguous()
        .clone()
        for k, v in state.items()
    }


def _float(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# --------------------------------------------------------------------------------------------
# Export


def _training_texts(data_root: Path, names: list[str], templates: list[str]) -> list[str]:
    """Every text the teacher was trained on: class captions and the image captions."""
    from ovdet.data.synthetic.catalog import split_files

    texts = [t.format(n) for n in names for t in templates]
    captions = split_files(data_root).get("captions_train")
    if captions is not None and captions.is_file():
        data = json.loads(captions.read_text(encoding="utf-8"))
        texts += [str(a["caption"]) for a in data.get("annotations", [])]
    return texts


def _text_tower_state(clip, texts: list[str]) -> dict[str, torch.Tensor]:
    state = {k: v for k, v in clip.model.state_dict().items() if not k.startswith("visual.")}
    if _TOKEN_KEY not in state:
        raise KeyError(
            f"teacher state_dict has no {_TOKEN_KEY!r}: not an open_clip CLIP text tower"
        )
    ids = set()
    for start in range(0, len(texts), 1024):
        ids.update(clip.tokenizer(texts[start : start + 1024]).unique().tolist())
    ids = torch.tensor(sorted(ids), dtype=torch.int64)
    table = state.pop(_TOKEN_KEY)
    state[_ROWS_KEY] = table[ids]
    state[_IDS_KEY] = ids
    state["token_embedding.num_embeddings"] = torch.tensor(table.shape[0], dtype=torch.int64)
    return _half(state)


def _model_yaml(cfg, path: Path) -> None:
    from detectron2.config import LazyConfig
    from omegaconf import OmegaConf

    model = copy.deepcopy(cfg.model)
    classifier = model.roi_heads.box_predictor.classifier
    # the vocabulary is data: filled from the text tower at load time
    classifier.train_embeddings = None
    classifier.test_embeddings = None
    model.vocabulary = None
    model.text_encoder = None
    LazyConfig.save(OmegaConf.create({"model": model}), str(path))


def export_demo_assets(
    out: str | os.PathLike,
    *,
    cfg,
    detector_checkpoint: str | os.PathLike,
    teacher_checkpoint: str | os.PathLike,
    data_root: str | os.PathLike,
    device: str = "cpu",
    command: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the demo assets of a trained ViLD-text run and re-evaluate them as shipped.

    Args:
        out: destination folder (created; files of the same names are replaced).
        cfg: the run's loaded LazyConfig (``model``, ``ov_shapes``, ``dataloader``).
        detector_checkpoint: the run's ``model_final.pth``.
        teacher_checkpoint: the teacher ``teacher.pt`` (``teacher.json`` beside it).
        data_root: the dataset root the run used (split, captions).
        device: where to re-evaluate.
        command: the command line that reproduces the assets (recorded).
        metrics: the run's metrics (recorded under ``metrics.training_run``).

    Returns:
        The manifest written to ``out/manifest.json``.
    """
    from ovdet.data.synthetic import load_split
    from ovdet.data.synthetic.catalog import ov_shapes_class_names
    from ovdet.engine.train import do_test
    from ovdet.teacher.pretrain import CAPTION_TEMPLATES
    from ovdet.teacher.small_clip import config_path_for, load_small_clip

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(data_root)
    names = ov_shapes_class_names(data_root, "all")
    split = load_split(data_root)
    templates = list(CAPTION_TEMPLATES)

    ckpt = torch.load(detector_checkpoint, map_location="cpu", weights_only=True)
    state = ckpt["model"] if "model" in ckpt else ckpt
    atomic_write(out / "detector.safetensors", lambda tmp: save_file(_half(state), tmp))
    _model_yaml(cfg, out / "detector.yaml")

    clip = load_small_clip(teacher_checkpoint)
    text_state = _text_tower_state(clip, _training_texts(data_root, names, templates))
    atomic_write(out / "teacher_text.safetensors", lambda tmp: save_file(text_state, tmp))
    clip_cfg = json.loads(config_path_for(teacher_checkpoint).read_text(encoding="utf-8"))
    write_json(out / "teacher_text.json", clip_cfg, indent=2)

    manifest: dict[str, Any] = {
        "format": ASSET_FORMAT,
        "command": command,
        "image_size": int(cfg.ov_shapes.image_size),
        "classes": names,
        "base": list(split["base"]),
        "novel": list(split["novel"]),
        "generator": split.get("params"),
        "templates": templates,
        "teacher_config": clip.config_name,
        "files": {},
        "metrics": {"training_run": metrics or {}},
    }
    _write_manifest(out, manifest)

    # re-evaluate what ships (fp16 weights, pruned token table) on the run's val set
    bundle = load_demo_assets(out, device=device)
    shipped = do_test(cfg, bundle.model).get("bbox", {})
    manifest["metrics"]["shipped_model_val"] = {
        k: shipped.get(k) for k in ("AP50_base", "AP50_novel", "AP50", "AP")
    }
    _write_manifest(out, manifest)
    _write_readme(out, manifest)
    return manifest


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    manifest["files"] = {
        name: {"sha256": file_sha256(out / name), "bytes": (out / name).stat().st_size}
        for name in DEMO_FILES
    }
    write_json(out / "manifest.json", manifest, indent=2)


def _write_readme(out: Path, manifest: dict[str, Any]) -> None:
    files = "\n".join(
        f"| `{name}` | {info['bytes'] / 1e6:.2f} MB | `{info['sha256']}` |"
        for name, info in manifest["files"].items()
    )
    metrics = manifest["metrics"]
    run = metrics.get("training_run", {})
    teacher = run.get("teacher", {})
    det = run.get("vild_text", {})
    shipped = metrics.get("shipped_model_val", {})

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def ap(x):
        return "n/a" if x is None else f"{x:.1f}"

    text = f"""# OV-Shapes demo assets

A small CLIP teacher's text tower and a ViLD-text detector trained on OV-Shapes base boxes,
used by `ovdet demo` (which never trains). Made by a real benchmark run:

```
{manifest["command"] or "ovdet bench ov-shapes --export-demo ovdet/assets/ov_shapes"}
```

Re-running that command reproduces these files up to floating-point nondeterminism
(same data, seeds and schedule); their checksums are recorded in `manifest.json`.

| file | size | sha256 |
|---|---|---|
{files}

- `detector.safetensors`: detector state_dict, floats in fp16 (restored to fp32 on load);
  `detector.yaml` its model LazyConfig.
- `teacher_text.safetensors` / `teacher_text.json`: the teacher's text tower (open_clip
  `{manifest["teacher_config"]}`), fp16; the token table holds only the tokens of the
  teacher's training text (other tokens never received a gradient and load as zeros).
- Classes: {len(manifest["classes"])} ({len(manifest["base"])} base, \
{len(manifest["novel"])} novel: {", ".join(manifest["novel"])}); images
  {manifest["image_size"]} px.

Metrics of the run (val split of the benchmark's dataset, every class in the vocabulary):
teacher zero-shot top-1 base {pct(teacher.get("top1_base"))}, novel \
{pct(teacher.get("top1_novel"))};
ViLD-text box AP50 base {ap(det.get("AP50_base"))}, novel {ap(det.get("AP50_novel"))};
as shipped (fp16) AP50 base {ap(shipped.get("AP50_base"))}, novel \
{ap(shipped.get("AP50_novel"))}.
"""
    atomic_write_text(out / "README.md", text)


# --------------------------------------------------------------------------------------------
# Loading


@dataclass
class DemoBundle:
    """The loaded demo assets.

    Attributes:
        model: ``OVRCNN`` in eval mode; its vocabulary is every class (base + novel), and
            ``set_vocabulary(names)`` encodes new names with ``text_encoder``.
        text_encoder: ``OpenCLIPTextEncoder`` over the teacher's text tower.
        manifest: ``manifest.json``.
        folder: where the assets were read from.
    """

    model: nn.Module
    text_encoder: Any
    manifest: dict[str, Any]
    folder: Path

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def base(self) -> list[str]:
        return list(self.manifest["base"])

    @property
    def novel(self) -> list[str]:
        return list(self.manifest["novel"])

    @property
    def image_size(self) -> int:
        return int(self.manifest["image_size"])


def verify_assets(folder: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` and check every file's size and sha256 against it.

    Returns:
        The manifest.

    Raises:
        FileNotFoundError / ValueError: naming the missing or mismatching file and how to
        make the assets again.
    """
    folder = Path(folder)
    how = "make them with `ovdet bench ov-shapes --export-demo DIR` (see README.md there)"
    path = folder / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"demo assets: {path} not found; {how}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != ASSET_FORMAT:
        raise ValueError(
            f"demo assets: {path} has format {manifest.get('format')!r}, this ovdet reads "
            f"{ASSET_FORMAT}; {how}"
        )
    for name in DEMO_FILES:
        file = folder / name
        info = manifest.get("files", {}).get(name)
        if info is None:
            raise ValueError(f"demo assets: {path} does not list {name}; {how}")
        if not file.is_file():
            raise FileNotFoundError(f"demo assets: {file} not found; {how}")
        if file.stat().st_size != info["bytes"] or file_sha256(file) != info["sha256"]:
            raise ValueError(
                f"demo assets: {file} does not match its sha256 in {path} (corrupt or "
                f"replaced; a Git LFS pointer?); {how}"
            )
    return manifest


def _load_text_encoder(folder: Path, device: str):
    from ovdet.text import OpenCLIPTextEncoder
    from ovdet.text.clip_models import create_clip_from_config, create_clip_tokenizer

    cfg = json.loads((folder / "teacher_text.json").read_text(encoding="utf-8"))
    model = create_clip_from_config(cfg, seed=0)
    state = load_file(str(folder / "teacher_text.safetensors"))
    rows, ids = state.pop(_ROWS_KEY), state.pop(_IDS_KEY)
    num = int(state.pop("token_embedding.num_embeddings"))
    table = torch.zeros(num, rows.shape[1], dtype=torch.float32)
    table[ids] = rows.float()
    state[_TOKEN_KEY] = table
    missing, unexpected = model.load_state_dict(_float(state), strict=False)
    missing = [k for k in missing if not k.startswith("visual.")]
    if missing or unexpected:
        raise ValueError(
            f"demo assets: {folder / 'teacher_text.safetensors'} does not fit "
            f"{folder / 'teacher_text.json'} (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    # only the text tower is used: drop the (random) image tower
    model.visual = None
    model.eval()
    return OpenCLIPTextEncoder(
        model_name="ovdet-demo-teacher",
        model=model,
        tokenizer=create_clip_tokenizer(cfg),
        device=device,
    )


def load_demo_assets(
    folder: str | os.PathLike | None = None, *, device: str = "cpu", verify: bool = True
) -> DemoBundle:
    """Load the shipped teacher text tower and detector.

    Args:
        folder: assets folder (default :func:`default_assets_dir`).
        device: "cpu" or "cuda".
        verify: check sizes and sha256 against the manifest first.

    Returns:
        :class:`DemoBundle` with the detector in eval mode, vocabulary = every class.
    """
    from detectron2.config import LazyConfig, instantiate

    from ovdet.engine.build import load_weights
    from ovdet.text import build_class_embeddings

    folder = Path(folder) if folder is not None else default_assets_dir()
    manifest = (
        verify_assets(folder)
        if verify
        else json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    )
    encoder = _load_text_encoder(folder, device)
    templates = list(manifest["templates"])
    cfg = LazyConfig.load(str(folder / "detector.yaml"))
    classifier = cfg.model.roi_heads.box_predictor.classifier
    classifier.train_embeddings = build_class_embeddings(encoder, manifest["base"], templates)
    classifier.test_embeddings = build_class_embeddings(encoder, manifest["classes"], templates)
    cfg.model.vocabulary = list(manifest["classes"])
    cfg.model.templates = templates
    cfg.model.text_encoder = encoder
    model = instantiate(cfg.model)
    # through ovdet's loader: the file must fit the model (fp16 values load into fp32 weights)
    load_weights(model, folder / "detector.safetensors", field="demo assets")
    model.to(device).eval()
    return DemoBundle(model=model, text_encoder=encoder, manifest=manifest, folder=folder)
