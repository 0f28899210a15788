"""Writing model bundles (:mod:`ovdet.model_zoo.bundle`) from trained OV-Shapes runs.

:func:`export_bundle` writes the bundle of one trained detector of any method (ViLD-text,
the ensembles, ..., and the Grounding R-CNN methods, whose prompts the teacher's text tower
reads token by token) given its loaded config; ``ovdet bench ov-shapes --export-demo DIR
--export-method METHOD`` calls it right after training that method. :func:`export_run_bundle`
does the same from a finished benchmark run folder (the config rebuilt from the method's
config file and the run's files, and checked against the ``config.json`` the run trained
with). Both re-evaluate the bundle as shipped (fp16 weights, pruned token table) on the run's
val split and record the metrics, the commands and the checksums in ``manifest.json`` and
``README.md``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ovdet.model_zoo.bundle import (
    ASSET_FORMAT,
    BUNDLE_FILES,
    IDS_KEY,
    NUM_KEY,
    ROWS_KEY,
    TOKEN_KEY,
    load_bundle,
    to_half,
)
from ovdet.model_zoo.readme import bundle_readme, method_title
from ovdet.utils.errors import InputError
from ovdet.utils.io import atomic_write, atomic_write_text, file_sha256, write_json

__all__ = ["export_bundle", "export_run_bundle"]

METRIC_KEYS = ("AP50_base", "AP50_novel", "AP50", "AP")
# parts of a detector's config that only training uses (they may need the teacher's files)
_TRAINING_ONLY = ("distillers",)


# --------------------------------------------------------------------------------------------
# Files


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
    if TOKEN_KEY not in state:
        raise KeyError(f"teacher state_dict has no {TOKEN_KEY!r}: not an open_clip CLIP text tower")
    ids = set()
    for start in range(0, len(texts), 1024):
        ids.update(clip.tokenizer(texts[start : start + 1024]).unique().tolist())
    ids = torch.tensor(sorted(ids), dtype=torch.int64)
    table = state.pop(TOKEN_KEY)
    state[ROWS_KEY] = table[ids]
    state[IDS_KEY] = ids
    state[NUM_KEY] = torch.tensor(table.shape[0], dtype=torch.int64)
    return to_half(state)


def _is_lazy_call(node: Any) -> bool:
    from omegaconf import DictConfig

    return isinstance(node, DictConfig) and "_target_" in node


def _is_grounding(cfg) -> bool:
    """Whether ``cfg.model`` is a Grounding R-CNN (a token encoder reads its prompts)."""
    return "token_encoder" in cfg.model


def _qualified_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"


def _token_encoder_settings(cfg, teacher_checkpoint: str | os.PathLike) -> dict[str, Any]:
    """How a grounding detector's token encoder reads class names (the bundle rebuilds it
    over the shipped text tower): ``template`` and ``max_tokens`` of its
    ``L(teacher_token_encoder)`` (the tower must be the teacher being exported)."""
    import inspect

    from ovdet.methods.grounding.config import teacher_token_encoder

    node = cfg.model.token_encoder
    expected = _qualified_name(teacher_token_encoder)
    if not _is_lazy_call(node) or _qualified_name(node._target_) != expected:
        got = _qualified_name(node._target_) if _is_lazy_call(node) else type(node).__name__
        raise InputError(
            f"model.token_encoder is {got}: a grounding bundle ships the OV-Shapes teacher's "
            f"text tower, so the detector must read its prompts with L({expected})(...)"
        )
    checkpoint = node.get("checkpoint")  # resolved within cfg (${ov_shapes.teacher})
    if checkpoint is None or Path(str(checkpoint)).resolve() != Path(teacher_checkpoint).resolve():
        raise InputError(
            f"model.token_encoder reads the teacher {checkpoint}, but the bundle would ship the "
            f"text tower of {teacher_checkpoint}; export with the teacher the detector was "
            "trained with (set ov_shapes.teacher)"
        )
    defaults = inspect.signature(teacher_token_encoder).parameters
    return {
        "template": str(node.get("template", defaults["template"].default)),
        "max_tokens": int(node.get("max_tokens", defaults["max_tokens"].default)),
    }


def _resolved(node: Any) -> Any:
    """A data-reading LazyCall of the run's config, called (within cfg: its ``${...}``
    resolve); anything else as it is."""
    from detectron2.config import instantiate

    return instantiate(node) if _is_lazy_call(node) else node


def _model_config(cfg) -> Any:
    """The model config of a bundle: standalone (no interpolation or data-reading LazyCall
    left), vocabulary fields empty (filled from the text tower at load time), without the
    training-only distillers.

    A grounding detector keeps its training class names (``train_vocabulary``, resolved: they
    set the number of training classes); its ``token_encoder`` is left empty."""
    from omegaconf import OmegaConf

    predictor = cfg.model.roi_heads.box_predictor
    model = copy.deepcopy(cfg.model)
    if _is_grounding(cfg):
        model.train_vocabulary = [str(n) for n in _resolved(cfg.model.train_vocabulary)]
        # L(count_names)(names=<the training classes>): their number
        model.roi_heads.box_predictor.num_classes = int(_resolved(predictor.num_classes))
        model.token_encoder = None
    else:
        # e.g. L(ov_shapes_class_names)(root="${ov_shapes.root}")
        base_names = _resolved(predictor.get("base_names"))
        if base_names is not None:
            model.roi_heads.box_predictor.base_names = [str(n) for n in base_names]
        classifier = model.roi_heads.box_predictor.classifier
        classifier.train_embeddings = None
        classifier.test_embeddings = None
        model.text_encoder = None
    model.vocabulary = None
    for key in _TRAINING_ONLY:
        if key in model:
            model[key] = []
    text = OmegaConf.to_yaml(OmegaConf.create({"model": model}), resolve=False)
    if "${" in text:
        lines = [line.strip() for line in text.splitlines() if "${" in line]
        raise InputError(
            f"the model config still refers to other config fields ({lines[:3]}): a bundle's "
            "detector.yaml must load on its own; resolve them in the method's config"
        )
    return model


def _write_model_yaml(model, path: Path) -> None:
    from detectron2.config import LazyConfig
    from omegaconf import OmegaConf

    LazyConfig.save(OmegaConf.create({"model": model}), str(path))


def _detector_state(checkpoint: str | os.PathLike) -> dict[str, torch.Tensor]:
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = ckpt["model"] if "model" in ckpt else ckpt
    drop = tuple(f"{key}." for key in _TRAINING_ONLY)
    return to_half({k: v for k, v in state.items() if not k.startswith(drop)})


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    manifest["files"] = {
        name: {"sha256": file_sha256(out / name), "bytes": (out / name).stat().st_size}
        for name in BUNDLE_FILES
    }
    write_json(out / "manifest.json", manifest, indent=2)


# --------------------------------------------------------------------------------------------
# Export


def export_bundle(
    out: str | os.PathLike,
    *,
    cfg,
    detector_checkpoint: str | os.PathLike,
    teacher_checkpoint: str | os.PathLike,
    data_root: str | os.PathLike,
    method: str = "vild_text",
    name: str | None = None,
    description: str | None = None,
    device: str = "cpu",
    command: str | None = None,
    made_by: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """Write the bundle of a trained OV-Shapes detector and re-evaluate it as shipped.

    Args:
        out: destination folder (created; files of the same names are replaced).
        cfg: the run's loaded LazyConfig (``model``, ``ov_shapes``, ``dataloader``), prepared
            as it was trained (e.g. the ensemble's ``image_temperature``).
        detector_checkpoint: the run's ``model_final.pth``.
        teacher_checkpoint: the teacher ``teacher.pt`` (``teacher.json`` beside it).
        data_root: the dataset root the run used (split, captions).
        method: the method the detector was trained with (``"rkd_ensemble"``).
        name: the model's name (default: the folder's name).
        description: one line (default: the method and the run's schedule).
        device: where to re-evaluate.
        command: the one command line that reproduces the bundle (recorded).
        made_by: how this bundle was actually made when that differs from ``command``
            (e.g. ``{"training_command": ..., "export_command": ...}``; recorded).
        metrics: the run's metrics, ``{"teacher": ..., method: ...}`` (recorded under
            ``metrics.training_run``).
        notes: a paragraph added to the README.

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
    run = copy.deepcopy(dict(metrics or {}))  # a copy: the caller may add to its dicts later
    if description is None:
        det = run.get(method, {})
        teacher = run.get("teacher", {})
        description = (
            f"{method_title(method)} on OV-Shapes ({det.get('iterations', '?')} iterations, "
            f"teacher of {teacher.get('steps', '?')} steps, seed {det.get('seed', '?')})"
        )

    model = _model_config(cfg)
    token_encoder = _token_encoder_settings(cfg, teacher_checkpoint) if _is_grounding(cfg) else None
    atomic_write(
        out / "detector.safetensors",
        lambda tmp: save_file(_detector_state(detector_checkpoint), tmp),
    )
    _write_model_yaml(model, out / "detector.yaml")
    clip = load_small_clip(teacher_checkpoint)
    text_state = _text_tower_state(clip, _training_texts(data_root, names, templates))
    atomic_write(out / "teacher_text.safetensors", lambda tmp: save_file(text_state, tmp))
    clip_cfg = json.loads(config_path_for(teacher_checkpoint).read_text(encoding="utf-8"))
    write_json(out / "teacher_text.json", clip_cfg, indent=2)

    manifest: dict[str, Any] = {
        "format": ASSET_FORMAT,
        "name": name or out.name,
        "method": method,
        "description": description,
        "command": command,
        **({"made_by": made_by} if made_by else {}),
        "image_size": int(cfg.ov_shapes.image_size),
        "classes": names,
        "base": list(split["base"]),
        "novel": list(split["novel"]),
        "generator": split.get("params"),
        "templates": templates,
        "teacher_config": clip.config_name,
        **({"token_encoder": token_encoder} if token_encoder else {}),
        "files": {},
        "metrics": {"training_run": run},
    }
    _write_manifest(out, manifest)

    # re-evaluate what ships (fp16 weights, pruned token table) on the run's val set
    bundle = load_bundle(out, device=device)
    shipped = do_test(cfg, bundle.model).get("bbox", {})
    manifest["metrics"]["shipped_model_val"] = {k: shipped.get(k) for k in METRIC_KEYS}
    _write_manifest(out, manifest)
    atomic_write_text(out / "README.md", bundle_readme(manifest, notes=notes))
    return manifest


def _differences(a: Any, b: Any, where: str = "model") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{where}.{key}")
        return out
    return [] if a == b else [f"{where}: {a!r} (rebuilt) vs {b!r} (trained)"]


def _check_trained_config(cfg, trained: Path) -> None:
    """Refuse a rebuilt config whose model differs from the one the run trained."""
    from ovdet.engine.build import config_as_data

    if not trained.is_file():
        return  # runs of older ovdet versions did not write it
    saved = json.loads(trained.read_text(encoding="utf-8")).get("model", {})
    rebuilt = config_as_data(cfg.model)
    for key in _TRAINING_ONLY:
        saved.pop(key, None)
        rebuilt.pop(key, None)
    diffs = _differences(rebuilt, saved)
    if diffs:
        raise InputError(
            f"the model config rebuilt from this ovdet's configs differs from the one the run "
            f"trained ({trained}): {'; '.join(diffs[:5])}; export with the ovdet that trained it"
        )


def _result(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: that stage of the run did not finish")
    return json.loads(path.read_text(encoding="utf-8"))["result"]


def export_run_bundle(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str,
    seed: int = 0,
    device: str = "cpu",
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`export_bundle` of a method trained by a finished ``ovdet bench ov-shapes`` run.

    The config is rebuilt as the benchmark built it (the method's OV-Shapes config with the
    run's data, class embeddings, image size and teacher-dependent settings) and compared
    with the run's ``seed<k>/<method>/config.json``; the run's teacher and method results
    become the bundle's ``metrics.training_run``.

    Args:
        run: the benchmark's ``--out`` folder.
        out: the bundle folder to write.
        method: the trained method (``"rkd_ensemble"``).
        seed: the run seed.
        device: where to re-evaluate.
        kwargs: :func:`export_bundle`'s ``name``, ``description``, ``command``, ``made_by``,
            ``notes``.

    Returns:
        The manifest written.
    """
    from ovdet.engine.build import load_config
    from ovdet.methods import METHODS, configs_dir

    run = Path(run)
    seed_dir = run / f"seed{seed}"
    weights = seed_dir / method / "model_final.pth"
    teacher = seed_dir / "teacher" / "teacher.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: the run has not finished {method!r}")
    registered = METHODS.get(method)
    config = registered.configs["ov_shapes"] if registered else f"ov_shapes/{method}_small.py"
    cfg = load_config(configs_dir() / config)
    cfg.ov_shapes.root = str(run / "data")
    cfg.ov_shapes.embeddings = str(seed_dir / "class_embeddings.pt")
    cfg.ov_shapes.prefix = "ov_shapes_export"
    report = run / "report.json"
    if report.is_file():
        cfg.ov_shapes.image_size = json.loads(report.read_text())["settings"]["image_size"]
    else:  # the generated images' size
        split = json.loads((run / "data" / "split.json").read_text(encoding="utf-8"))
        cfg.ov_shapes.image_size = int(split["params"]["image_size"][0])
    if "teacher_store" in cfg.ov_shapes:
        cfg.ov_shapes.teacher_store = str(seed_dir / "teacher_regions")
    cfg.dataloader.test.num_workers = 0
    if registered is not None and registered.prepare is not None:
        registered.prepare(cfg, teacher)  # e.g. the ensemble's image-head temperature
    _check_trained_config(cfg, seed_dir / method / "config.json")
    metrics = {"teacher": _result(seed_dir / "teacher" / "result.json")}
    metrics[method] = _result(seed_dir / method / "result.json")
    if method != "vild_text" and (seed_dir / "vild_text" / "result.json").is_file():
        metrics["vild_text"] = _result(seed_dir / "vild_text" / "result.json")
    return export_bundle(
        out,
        cfg=cfg,
        detector_checkpoint=weights,
        teacher_checkpoint=teacher,
        data_root=run / "data",
        method=method,
        device=device,
        metrics=metrics,
        **kwargs,
    )
