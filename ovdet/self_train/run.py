"""The self-training loop: rounds of label -> merge -> train -> evaluate, resumable."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError
from ovdet.utils.io import file_sha256, write_json

from .merge import MergeSettings, check_merge_settings, merge_pseudo_labels
from .student import INITS, control_config, gold_dataset, student_config

__all__ = ["run_self_train"]

logger = logging.getLogger("ovdet.self_train")

FORMAT = "ovdet-self-train"
VERSION = 1
MANIFEST = "self_train.json"
PSEUDO_CLASS_CHOICES = ("novel", "all")


def _round_dir(out: Path, r: int) -> Path:
    return out / f"round_{r}"


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or (data.get("format"), data.get("version")) != (
        FORMAT,
        VERSION,
    ):
        raise InputError(
            f"{path} is not the manifest of an ovdet self-train run (format {FORMAT!r}, version "
            f"{VERSION}); pass --overwrite to start over there, or choose another --output"
        )
    return data


def _diffs(old: dict[str, Any], settings: dict[str, Any]) -> str:
    """The settings that differ between a folder's manifest and this run, as text."""
    return "; ".join(
        f"{k}: {old['settings'].get(k)!r} -> {settings.get(k)!r}"
        for k in sorted(set(old["settings"]) | set(settings))
        if old["settings"].get(k) != settings.get(k)
    )


def _check_folder(
    out: Path, settings: dict[str, Any], overwrite: bool, replace_stale: bool = False
) -> dict[str, Any]:
    """The manifest to continue with: the folder's own (same settings) or a fresh one."""
    fresh = {"format": FORMAT, "version": VERSION, "settings": settings, "rounds": {}}
    old = _read_manifest(out) if not overwrite else None
    if replace_stale and old is not None and old["settings"] != settings:
        logger.info("%s: another run's folder (%s); starting over", out, _diffs(old, settings))
        overwrite, old = True, None
    if overwrite:
        (out / MANIFEST).unlink(missing_ok=True)
        for folder in out.glob("round_*"):
            shutil.rmtree(folder)
        return fresh
    if old is None:
        leftovers = sorted(p.name for p in out.glob("round_*"))
        if leftovers:
            raise InputError(
                f"--output {out} holds {leftovers} but no {MANIFEST}; pass --overwrite to start "
                "over there, or choose another --output"
            )
        return fresh
    diffs = _diffs(old, settings)
    if diffs:
        raise InputError(
            f"--output {out} holds a self-train run with other settings ({diffs}); "
            "pass --overwrite to start over there, or choose another --output"
        )
    return old


def _teacher(cfg, weights: Path, settings: dict[str, Any], base, device, low: float):
    """The round's teacher: the config's detector with ``weights``, its test vocabulary
    (novel: the classes not in ``base``)."""
    from ovdet.predictor import OVPredictor
    from ovdet.pseudo_label import DetectorTeacher

    predictor = OVPredictor.from_config(
        copy.deepcopy(cfg), str(weights), device=device or "auto", score_thresh=low
    )
    names = list(predictor.vocabulary)
    novel = [n for n in names if n not in set(base)]
    identity = {
        "config": settings["config"],
        "weights": {"file": str(weights), "sha256": file_sha256(weights)},
        "model": None,
        "vocabulary": {"names": names, "embeddings": None},
        "novel": list(novel),
    }
    return DetectorTeacher(predictor, min_score=low, novel=novel, identity=identity)


def _metrics(test: dict[str, Any]) -> dict[str, Any]:
    """Box and mask AP keys of an evaluation (``segm_`` prefix for masks); NaN -> None."""
    out: dict[str, Any] = {}
    for task, prefix in (("bbox", ""), ("segm", "segm_")):
        for k, v in (test.get(task) or {}).items():
            if k.startswith("AP"):
                ok = isinstance(v, (int, float)) and math.isfinite(v)
                out[prefix + k] = float(v) if ok else None
    return out


def _train(train_and_evaluate, cfg, folder: Path) -> dict[str, Any]:
    """Train and evaluate ``cfg`` (resuming from its checkpoints); its result record."""
    run = train_and_evaluate(cfg, resume=True)
    return {
        **_metrics(run["test"]),
        "iterations": run["iterations"],
        "train_time_s": round(run["train_time_s"], 2),
        "weights": str(folder / "model_final.pth"),
    }


def run_self_train(
    *,
    config: str | Path | Any,
    weights: str | Path,
    output: str | Path,
    overrides: Sequence[str] = (),
    rounds: int = 1,
    high: float = 0.3,
    low: float = 0.1,
    gold_iou: float = 0.5,
    nms_iou: float = 0.5,
    pseudo_classes: str = "novel",
    init: str = "teacher",
    max_iter: int | None = None,
    seed: int | None = None,
    max_per_image: int = 100,
    batch_size: int = 8,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    control: bool = False,
    replace_stale: bool = False,
) -> dict[str, Any]:
    """Self-train a detector for ``rounds`` rounds; see :mod:`ovdet.self_train`.

    ``control=True`` also trains each round's gold-only control (:func:`control_config`: the
    teacher's config on the gold boxes alone, the student's schedule, started from round
    r - 1's control, round 1's from the teacher) and evaluates it the same way; adding it
    to a finished run trains only the controls.

    ``config`` is a LazyConfig file (recorded by path and sha256) or a loaded LazyConfig
    (recorded by the sha256 of its data, :func:`ovdet.engine.build.config_as_data`).
    ``replace_stale=True`` starts a folder of another run (other settings) over instead of
    refusing it: for callers whose folders hold the results of one key only (the benchmark).

    Returns:
        ``{"output", "rounds": [{"round", "teacher", "labels": {...}, "merge": {...},
        "metrics": {"AP50_base", "AP50_novel", ...}, "weights"[, "control": {"metrics",
        "weights"}]}]}``.

    Raises:
        InputError, FileNotFoundError: a bad option, file or config, named, before any work.
    """
    from ovdet.engine.build import config_as_data, load_config
    from ovdet.engine.train import check_train_config, train_and_evaluate
    from ovdet.pseudo_label import run_pseudo_label

    # 1. checks, before any model is built
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise InputError(f"--rounds must be an integer >= 1, got {rounds!r}")
    if pseudo_classes not in PSEUDO_CLASS_CHOICES:
        raise InputError(
            f"--pseudo-classes must be one of {PSEUDO_CLASS_CHOICES}, got {pseudo_classes!r}"
        )
    if init not in INITS:
        raise InputError(f"--student must be one of {INITS}, got {init!r}")
    if control and init != "teacher":
        raise InputError(
            "--control trains the teacher on the gold boxes for the student's iterations, the "
            "counterpart of a student started from the teacher; with --student scratch the "
            "counterpart is the config's own training on gold (the teacher itself)"
        )
    if max_iter is not None and (not isinstance(max_iter, int) or max_iter < 1):
        raise InputError(f"--max-iter must be an integer >= 1, got {max_iter!r}")
    merge_settings = check_merge_settings(MergeSettings(high, low, gold_iou, nms_iou))
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights} not found; give the teacher's checkpoint")
    if isinstance(config, (str, os.PathLike)):
        config_path = Path(config).expanduser()
        cfg = load_config(config_path, overrides)
        config_record = {"file": str(config_path), "sha256": file_sha256(config_path)}
    else:  # a loaded config: recorded by what it holds
        cfg = load_config(copy.deepcopy(config), overrides)
        text = json.dumps(config_as_data(cfg), sort_keys=True)
        config_record = {"file": None, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    check_train_config(cfg)
    gold_name, gold_meta = gold_dataset(cfg)
    gold_json = Path(gold_meta.json_file)
    base = list(getattr(gold_meta, "base_classes", []) or [])
    out = Path(output).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "config": {**config_record, "overrides": list(overrides)},
        "weights": {"file": str(weights), "sha256": file_sha256(weights)},
        "gold": {"dataset": gold_name, "json": str(gold_json), "sha256": file_sha256(gold_json)},
        "merge": merge_settings.to_json(),
        "pseudo_classes": pseudo_classes,
        "student": init,
        "max_iter": max_iter,
        "seed": seed,
        "max_per_image": max_per_image,
    }
    manifest = _check_folder(out, settings, overwrite, replace_stale)
    write_json(out / MANIFEST, manifest, indent=1, durable=True)
    gold = json.loads(gold_json.read_text(encoding="utf-8"))

    def record(r: int, step: str, value: Any) -> None:
        manifest["rounds"].setdefault(str(r), {})[step] = value
        write_json(out / MANIFEST, manifest, indent=1, durable=True)

    teacher_weights = weights
    summary = []
    for r in range(1, rounds + 1):
        folder = _round_dir(out, r)
        done = manifest["rounds"].get(str(r), {})
        # label: ovdet pseudo-label's own resumable run (journal) in round_r/labels
        if "labels" not in done:
            teacher = _teacher(cfg, teacher_weights, settings, base, device, low)
            if progress:
                print(f"ovdet self-train: round {r}: labelling with {teacher_weights}",
                      file=sys.stderr)  # fmt: skip
            labels = run_pseudo_label(
                output=folder / "labels",
                coco_json=gold_json,
                image_root=gold_meta.image_root,
                teacher=teacher,
                score_thresh=low,
                max_per_image=max_per_image,
                batch_size=batch_size,
                device=device,
                progress=progress,
            )
            del teacher
            record(r, "labels", {**labels, "teacher": str(teacher_weights)})
        # merge: gold + pseudo -> round_r/train.json
        if "merge" not in done:
            pseudo = json.loads((folder / "labels" / "pseudo_labels.json").read_text("utf-8"))
            names = [c["name"] for c in sorted(pseudo["categories"], key=lambda c: c["id"])]
            if pseudo_classes == "all":
                chosen = names
            else:  # the split's novel classes; without a split, those without gold boxes
                chosen = [n for n in names if n not in set(base)] if base else None
            merged, stats = merge_pseudo_labels(
                gold, pseudo, merge_settings, pseudo_classes=chosen, where=f"round {r}"
            )
            write_json(folder / "train.json", merged, compact=True, durable=True)
            record(r, "merge", stats)
        # train + evaluate: the student, resumable through its checkpoints
        if "train" not in done:
            merged = json.loads((folder / "train.json").read_text("utf-8"))
            names = [c["name"] for c in merged["categories"]]
            del merged
            tag = hashlib.sha256(str(out.resolve()).encode("utf-8")).hexdigest()[:8]
            student = student_config(
                cfg,
                dataset=f"ovdet_self_train_{tag}_round_{r}",
                train_json=str(folder / "train.json"),
                image_root=str(gold_meta.image_root),
                novel=[n for n in names if n not in base],
                output_dir=str(folder / "model"),
                init=init,
                teacher_weights=str(teacher_weights),
                max_iter=max_iter,
                seed=seed,
                where=f"round {r}",
            )
            if device:
                student.train.device = device
            if progress:
                print(f"ovdet self-train: round {r}: training the student", file=sys.stderr)
            result = _train(train_and_evaluate, student, folder / "model")
            write_json(folder / "result.json", result, indent=2, durable=True)
            record(r, "train", result)
        # the gold-only control: the same schedule without the pseudo boxes
        if control and "control" not in done:
            start = weights if r == 1 else manifest["rounds"][str(r - 1)]["control"]["weights"]
            gold_only = control_config(
                cfg,
                output_dir=str(folder / "control"),
                init_weights=str(start),
                max_iter=max_iter,
                seed=seed,
            )
            if device:
                gold_only.train.device = device
            if progress:
                print(f"ovdet self-train: round {r}: training the gold-only control",
                      file=sys.stderr)  # fmt: skip
            result = _train(train_and_evaluate, gold_only, folder / "control")
            write_json(folder / "control" / "result.json", result, indent=2, durable=True)
            record(r, "control", result)
        entry = manifest["rounds"][str(r)]
        summary.append(
            {
                "round": r,
                "teacher": entry["labels"]["teacher"],
                "labels": entry["labels"],
                "merge": entry["merge"],
                "metrics": {
                    k: v for k, v in entry["train"].items() if k.startswith(("AP", "segm"))
                },
                "weights": entry["train"]["weights"],
            }
        )
        if "control" in entry:
            summary[-1]["control"] = {
                "metrics": {
                    k: v for k, v in entry["control"].items() if k.startswith(("AP", "segm"))
                },
                "weights": entry["control"]["weights"],
            }
        teacher_weights = Path(entry["train"]["weights"])
    write_json(out / "summary.json", {"output": str(out), "rounds": summary}, indent=2)
    return {"output": str(out), "rounds": summary}
