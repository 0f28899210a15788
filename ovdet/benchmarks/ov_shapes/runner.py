"""The OV-Shapes benchmark: generate -> pretrain teacher -> embed -> train detectors -> evaluate.

:func:`run_benchmark` runs every stage in this process and returns a JSON-able report:

1. data: generate an OV-Shapes dataset (or point at an external COCO-format one);
2. per seed: pretrain the small CLIP teacher on (object crop, class caption) and (image,
   caption) pairs of the training images, all classes (:mod:`ovdet.teacher.pretrain`), and
   measure its zero-shot crop accuracy on val, base / novel;
3. embed every class name with the teacher's text tower (prompt ensemble);
4. per method (:mod:`~ovdet.benchmarks.ov_shapes.methods`): train its config and evaluate box
   AP50 on val with every class in the vocabulary (generalised), base / novel;
5. mean and standard deviation over seeds, wall time per stage, peak memory.

The data is one world: the default OV-Shapes, or ``BenchmarkSettings.generator`` (e.g. a
world of :mod:`ovdet.data.synthetic.worlds`); :mod:`~ovdet.benchmarks.ov_shapes.suite` runs
this benchmark in several worlds and combines the reports.

Finished work is kept and reused (:func:`run_benchmark` resumes): a seed's teacher whose
``teacher/result.json`` records the same teacher and data settings is not pretrained again, and
a method whose ``<method>/result.json`` records the same resolved config, teacher checkpoint
and class embeddings is not trained again (the region store resumes on its own); a killed
training of the same key resumes from its newest checkpoint (``claim_run_folder``; detectron2
restores model, optimizer, schedule and iteration, not the data order, so a resumed run is
recorded with ``resumed: true``). Seeds can run as separate processes on one ``out``
(``--seeds 0`` and ``--seeds 1`` side by side, then ``--seeds 0,1`` for the combined report
from the finished runs). The keys cover settings, configs and input files,
not ovdet's code: after changing the code a method depends on, use a fresh ``out`` (or delete
that method's ``result.json``).

Layout of ``out``::

    data/                      generated dataset (or split.json + train_base.json of --data)
    seed<k>/teacher/teacher.pt (+ teacher.json, result.json)
    seed<k>/class_embeddings.pt (+ class_embeddings.names.txt, class_embeddings.json)
    seed<k>/<method>/          detector run (model_final.pth, metrics.json, inference/,
                               config.json: the config as trained, result.json)
    seed<k>/self_train/<method>/  with --self-train: an ``ovdet self-train`` folder
    report.json                the returned report
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ovdet.benchmarks.ov_shapes.context import MethodContext
from ovdet.benchmarks.ov_shapes.methods import MethodSpec, resolve_methods
from ovdet.benchmarks.ov_shapes.self_train import (
    check_self_train,
    self_train_method,
    self_train_section,
)
from ovdet.benchmarks.ov_shapes.summary import SEGM_KEYS, finite, fmt, method_keys, pct, summarise
from ovdet.benchmarks.resources import StageTimer, environment, peak_memory_mb
from ovdet.data.synthetic.catalog import (
    DEFAULT_PREFIX,
    ov_shapes_class_names,
    prepare_external_dataset,
    split_files,
)
from ovdet.engine.build import as_data, config_as_data
from ovdet.engine.resume import claim_run_folder
from ovdet.utils.device import resolve_device
from ovdet.utils.io import write_json

__all__ = ["BenchmarkSettings", "run_benchmark", "summarise"]

logger = logging.getLogger("ovdet.bench")

REPORT_VERSION = 1


@dataclass
class BenchmarkSettings:
    """Settings of one benchmark run; defaults are the published default size.

    Attributes:
        out: output folder (see the module docstring).
        num_train / num_val: generated images per split.
        image_size: generated image size and detector train/test size (pixels).
        data_seed: seed of the generated dataset (the same for every run seed).
        generator: OV-Shapes generator parameters (:class:`ovdet.data.synthetic.OVShapesConfig`
            fields but ``image_size``, e.g. a world's ``params`` from
            :mod:`ovdet.data.synthetic.worlds`); None for the default world.
        seeds: run seeds; each repeats teacher pretraining and every method.
        teacher_epochs: teacher passes over the object crops. 30 (default) gives a teacher
            that names about 95 % of the val crops (about 14 min on one CPU core); 12
            gives about 70 % and 4 about 50 %, too weak for distillation to help.
        teacher_steps: cap on teacher steps (None: ``teacher_epochs`` decide).
        teacher_batch_size: teacher pairs per step.
        det_iters: detector iterations (None: the method config's ``train.max_iter``).
        det_batch_size: detector images per step (None: the config's).
        methods: method names or specs (None: the defaults of
            :data:`~ovdet.benchmarks.ov_shapes.methods.BUILTIN_METHODS`).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        data: an external COCO-format dataset folder instead of generating one.
        novel: novel class names of ``data``.
        captions: captions json of ``data``'s training images.
        num_workers: data-loading workers for the detectors (None: the config's).
        threads: torch CPU threads while training and testing detectors (None: half the
            cores, at least 1). On a 2-core machine shared with data-loading workers or other
            jobs, two OpenMP threads made detector steps several times slower than one (the
            threads wait on each other whenever one is descheduled).
        export_demo: write the model bundle (teacher text tower, detector, manifest, README;
            :func:`ovdet.model_zoo.export_bundle`) of the first seed's ``export_method`` run
            to this folder.
        export_method: the method whose detector is exported (one of ``methods``).
        export_command: the command line recorded in the bundle's manifest.
        progress: show the data generator's progress bar.
        self_train: methods whose trained detectors are self-trained after training, per
            seed (:mod:`~ovdet.benchmarks.ov_shapes.self_train`); empty: none.
        self_train_rounds: self-training rounds.
        self_train_iters: iterations of each round's student (and control): 700, half the
            detectors' 1400.
        self_train_seed: the students' (and controls') seed, the same for every run seed.
        self_train_control: also train each round's gold-only control.
    """

    out: str | os.PathLike
    num_train: int = 1000
    num_val: int = 200
    image_size: int = 160
    data_seed: int = 0
    generator: Mapping[str, Any] | None = None
    seeds: Sequence[int] = (0,)
    teacher_epochs: int = 30
    teacher_steps: int | None = None
    teacher_batch_size: int = 128
    det_iters: int | None = None
    det_batch_size: int | None = None
    methods: Sequence[str | MethodSpec] | None = None
    device: str = "auto"
    data: str | os.PathLike | None = None
    novel: Sequence[str] | None = None
    captions: str | os.PathLike | None = None
    num_workers: int | None = None
    threads: int | None = None
    export_demo: str | os.PathLike | None = None
    export_method: str = "vild_text"
    export_command: str | None = None
    progress: bool = True
    self_train: Sequence[str] = ()
    self_train_rounds: int = 1
    self_train_iters: int = 700
    self_train_seed: int = 0
    self_train_control: bool = True

    def __post_init__(self) -> None:
        if self.generator is not None:
            self.generator = dict(self.generator)
            if "image_size" in self.generator:
                raise ValueError("generator: set the image size with image_size, not here")

    def public(self) -> dict[str, Any]:
        """JSON-able settings for the report."""
        out = asdict(self)
        out["methods"] = [m.name if isinstance(m, MethodSpec) else m for m in self.methods or []]
        out["methods"] = out["methods"] or None
        for key in ("out", "data", "captions", "export_demo"):
            out[key] = None if out[key] is None else str(out[key])
        out["seeds"] = list(self.seeds)
        out["self_train"] = list(self.self_train or ())
        if not out["self_train"]:  # no self-training: the report keys of earlier versions
            for key in [k for k in out if k.startswith("self_train")]:
                out.pop(key)
        if self.generator is None:
            out.pop("generator")  # the default world: the report keys of earlier versions
        else:
            out["generator"] = as_data(dict(self.generator))
        return out


# --------------------------------------------------------------------------------------------
# Stages


def _prepare_data(s: BenchmarkSettings, out: Path, log: Callable[[str], None]) -> dict[str, Any]:
    root = out / "data"
    if s.data is not None:
        if not s.novel:
            raise ValueError("--data needs --novel (the novel class names of that dataset)")
        split = prepare_external_dataset(s.data, root, s.novel, captions=s.captions)
        log(f"data: external {s.data}: {len(split['base'])} base / {len(split['novel'])} novel")
        return {"root": str(root), "source": str(s.data), "generated": False}
    from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes, load_split
    from ovdet.data.synthetic.dataset import photo_record

    config = OVShapesConfig(image_size=s.image_size, **dict(s.generator or {}))
    split_json = root / "split.json"
    wanted = {
        "num_train": s.num_train,
        "num_val": s.num_val,
        "seed": s.data_seed,
        "params": config.to_dict(),
    }
    if config.background == "photo":  # the same photos too (a folder's content may change)
        wanted["photos"] = photo_record(config)
    if split_json.is_file():
        have = load_split(root)
        if all(have.get(k) == v for k, v in wanted.items()):
            log(f"data: reusing {root}")
            return {"root": str(root), "generated": True, "reused": True, **_counts(root)}
    log(
        f"data: generating {s.num_train} train / {s.num_val} val images at {s.image_size} px, "
        f"{len(config.categories)} classes"
    )
    summary = generate_ov_shapes(
        root,
        num_train=s.num_train,
        num_val=s.num_val,
        seed=s.data_seed,
        config=config,
        workers=1,
        progress=s.progress,
    )
    return {"root": str(root), "generated": True, "reused": False, "summary": summary}


def _counts(root: Path) -> dict[str, Any]:
    from ovdet.data.synthetic import load_split

    split = load_split(root)
    return {"num_base": len(split["base"]), "num_novel": len(split["novel"])}


def _pretrain_teacher(
    s: BenchmarkSettings, root: Path, seed_dir: Path, seed: int, device: str, log
) -> tuple[Path, dict[str, Any]]:
    from ovdet.data.synthetic import load_split
    from ovdet.teacher.pretrain import DataFiles, PretrainConfig, pretrain_clip

    files = split_files(root)
    split = load_split(root)
    has_captions = split.get("has_captions", True)
    data_files = DataFiles(
        train_json=files["train_all"],
        train_image_roots=[files["images_train"]],
        val_json=files["val"],
        val_image_roots=[files["images_val"]],
        captions_json=files["captions_train"] if has_captions else None,
        base=list(split["base"]),
        novel=list(split["novel"]),
    )
    cfg = PretrainConfig(
        epochs=s.teacher_epochs,
        max_steps=s.teacher_steps,
        batch_size=s.teacher_batch_size,
        seed=seed,
        device=device,
        log_every=20,
    )
    ckpt = seed_dir / "teacher" / "teacher.pt"
    key = {
        "seed": seed,
        "epochs": s.teacher_epochs,
        "max_steps": s.teacher_steps,
        "batch_size": s.teacher_batch_size,
        "data": _file_digest(files["train_all"]),
    }
    done = _load_result(ckpt.parent / "result.json", key, required=[ckpt])
    if done is not None:
        log(f"seed {seed}: reusing the teacher in {ckpt.parent}")
        return ckpt, done
    summary = pretrain_clip(data_files, ckpt, cfg, log=log)
    zs = summary["zero_shot"] or {}
    result = {
        "seed": seed,
        "top1_all": finite(zs.get("top1_all")),
        "top1_base": finite(zs.get("top1_base")),
        "top1_novel": finite(zs.get("top1_novel")),
        "chance": finite(zs.get("chance")),
        "num_crops": zs.get("num_all"),
        "steps": summary["steps"],
        "loss_first": finite(summary["loss_first"]),
        "loss_last": finite(summary["loss_last"]),
        "train_time_s": summary["train_time_s"],
        "wall_time_s": summary["wall_time_s"],
    }
    _save_result(ckpt.parent / "result.json", key, result)
    return ckpt, result


def _embed_classes(root: Path, teacher: Path, out: Path, device: str) -> Path:
    from ovdet.teacher.pretrain import CAPTION_TEMPLATES
    from ovdet.teacher.small_clip import load_small_clip
    from ovdet.text import OpenCLIPTextEncoder, build_class_embeddings, save_class_embeddings

    names = ov_shapes_class_names(root, "all")
    stamp = out.with_suffix(".json")
    key = {"teacher": _file_digest(teacher), "names": list(names)}
    if _load_result(stamp, key, required=[out]) is not None:
        return out  # the same teacher and names: keep the file (methods key on its digest)
    clip = load_small_clip(teacher, device=device)
    encoder = OpenCLIPTextEncoder(model=clip.model, tokenizer=clip.tokenizer, device=device)
    # the teacher's own caption templates: the prompts it was trained and evaluated with
    emb = build_class_embeddings(encoder, names, list(CAPTION_TEMPLATES))
    path = save_class_embeddings(out, emb, names)
    _save_result(stamp, key, {"path": str(path.name)})
    return path


def _method_config(method: MethodSpec, s: BenchmarkSettings, ctx: MethodContext, prefix: str):
    from detectron2.config import LazyConfig

    cfg = LazyConfig.load(str(method.config_path()))
    if "ov_shapes" not in cfg:
        raise ValueError(
            f"method {method.name!r}: config {method.config_path()} has no 'ov_shapes' field; "
            "OV-Shapes benchmark configs import configs/ov_shapes/vild_text_small.py"
        )
    cfg.ov_shapes.root = str(ctx.data_root)
    cfg.ov_shapes.embeddings = str(ctx.embeddings)
    cfg.ov_shapes.image_size = ctx.image_size
    cfg.ov_shapes.prefix = prefix
    cfg.train.output_dir = str(ctx.work_dir)
    cfg.train.seed = ctx.seed
    cfg.train.device = ctx.device
    if s.det_iters is not None:
        cfg.train.max_iter = int(s.det_iters)
    # the config's checkpoint period (200 iterations), the newest one kept: a killed run can be
    # inspected or continued by hand. Saving reads the weights and optimizer state and draws no
    # random number, so it changes no trained number
    max_iter = int(cfg.train.max_iter)
    period = max(1, min(int(cfg.train.checkpointer.period), max_iter))
    cfg.train.checkpointer = dict(period=period, max_to_keep=1)
    if s.det_batch_size is not None:
        cfg.dataloader.train.total_batch_size = int(s.det_batch_size)
    if s.num_workers is not None:
        cfg.dataloader.train.num_workers = int(s.num_workers)
        cfg.dataloader.test.num_workers = int(s.num_workers)
    if method.prepare is not None:
        method.prepare(ctx, cfg)
    return cfg


def _config_digest(cfg: Any, out: Path) -> str:
    """sha256 of the config as data, with the run folder ``out`` written as ``<out>`` (a moved
    or copied run folder keeps its finished results)."""
    text = json.dumps(config_as_data(cfg), sort_keys=True)
    text = text.replace(str(out), "<out>")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_digest(path: str | os.PathLike) -> str:
    from ovdet.utils.io import file_sha256

    return file_sha256(path)


def _load_result(path: Path, key: dict[str, Any], required: Sequence[Path] = ()) -> Any:
    """The result saved at ``path`` when it was saved under ``key`` and ``required`` exist."""
    if not path.is_file() or not all(Path(p).is_file() for p in required):
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # torn or unreadable: redo the stage
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    return saved.get("result")


def _save_result(path: Path, key: dict[str, Any], result: Any) -> None:
    """Write atomically (temp file + rename): a crash never leaves a half-written result."""
    write_json(path, {"key": key, "result": result}, indent=2, durable=True)


def _train_method(method: MethodSpec, s: BenchmarkSettings, ctx: MethodContext, prefix: str):
    from ovdet.engine.train import train_and_evaluate

    cfg = _method_config(method, s, ctx, prefix)
    key = {
        "method": method.name,
        "config": _config_digest(cfg, ctx.work_dir.parents[1]),
        "teacher": _file_digest(ctx.teacher_checkpoint),
        "embeddings": _file_digest(ctx.embeddings),
    }
    done = _load_result(ctx.work_dir / "result.json", key)
    if done is not None:
        return cfg, {**done, "reused": True}
    # the config this run trains with, as prepared (e.g. the ensemble's image temperature)
    write_json(ctx.work_dir / "config.json", config_as_data(cfg), indent=2)
    resume = claim_run_folder(ctx.work_dir, key)  # a killed run of this key: from its checkpoint
    run = train_and_evaluate(copy.deepcopy(cfg), resume)  # training sets the model in its cfg
    bbox = run["test"].get("bbox", {})
    segm = run["test"].get("segm", {})  # the mask head's AP (docs: segm_* keys)
    scalars = run["scalars"]
    result = {
        "seed": ctx.seed,
        "AP50_base": finite(bbox.get("AP50_base")),
        "AP50_novel": finite(bbox.get("AP50_novel")),
        "AP50": finite(bbox.get("AP50")),
        "AP_base": finite(bbox.get("AP_base")),
        "AP_novel": finite(bbox.get("AP_novel")),
        "AP": finite(bbox.get("AP")),
        **{f"segm_{k}": finite(segm.get(k)) for k in SEGM_KEYS if segm},
        "iterations": run["iterations"],
        "batch_size": int(cfg.dataloader.train.total_batch_size),
        "final_total_loss": finite(scalars.get("total_loss")),
        "train_time_s": round(run["train_time_s"], 2),
        "output_dir": run["output_dir"],
        **({"resumed": True} if resume else {}),
    }
    _save_result(ctx.work_dir / "result.json", key, result)
    return cfg, result


# --------------------------------------------------------------------------------------------
# The benchmark


def run_benchmark(
    settings: BenchmarkSettings, *, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the OV-Shapes benchmark (see the module docstring) and write ``out/report.json``.

    Args:
        settings: what to run.
        log: progress sink (default: the ``ovdet.bench`` logger).

    Returns:
        The report: ``benchmark``, ``version``, ``settings``, ``environment``, ``data``,
        ``teacher`` (``per_seed`` zero-shot top-1 base / novel / all, and when a distillation
        method ran, ``region_targets``: proposal recall and teacher top-1 on the stored
        regions, base / novel; ``mean``, ``std``),
        ``methods`` (per method: ``description``, ``config``, ``per_seed`` box AP50 base /
        novel / all (+ AP) and the mask head's ``segm_*`` of the same keys, ``mean``,
        ``std``), ``time_s`` (per stage and ``total``), ``memory_mb``
        (peak RSS of this process and of its children, peak CUDA memory), ``demo_export``
        (the manifest written, or None) and, with ``settings.self_train``, ``self_train``
        (:func:`~ovdet.benchmarks.ov_shapes.self_train.self_train_section`).
    """
    log = log or logger.info
    s = settings
    if not s.seeds:
        raise ValueError("seeds is empty: give at least one seed")
    if len(set(s.seeds)) != len(list(s.seeds)):
        raise ValueError(f"seeds listed twice: {list(s.seeds)}")
    methods = resolve_methods(s.methods)
    check_self_train(s, [m.name for m in methods])
    if s.export_demo is not None:
        if s.export_method not in [m.name for m in methods]:
            raise ValueError(
                f"--export-method {s.export_method} is not among --methods "
                f"{[m.name for m in methods]}: add it (and vild_text, whose RPN it may need)"
            )
        if s.data is not None:
            raise ValueError("--export-demo makes OV-Shapes demo assets: not with --data")
    device = resolve_device(s.device)
    out = Path(s.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads or max(1, _num_cores() // 2))
    try:
        return _run(s, methods, device, out, log)
    finally:
        torch.set_num_threads(old_threads)


def _num_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run(
    s: BenchmarkSettings,
    methods: list[MethodSpec],
    device: str,
    out: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    timer = StageTimer()

    with timer("data"):
        data = _prepare_data(s, out, log)
    root = Path(data["root"])
    # registering another root under this prefix replaces the earlier one (runs in sequence)
    prefix = f"{DEFAULT_PREFIX}_bench"

    teacher_runs: list[dict[str, Any]] = []
    method_runs: dict[str, list[dict[str, Any]]] = {m.name: [] for m in methods}
    st_runs: dict[str, list[dict[str, Any]]] = {m: [] for m in s.self_train or ()}
    export = None
    for seed in s.seeds:
        seed_dir = out / f"seed{seed}"
        log(f"seed {seed}: pretraining the teacher")
        with timer("teacher"):
            teacher, t_result = _pretrain_teacher(s, root, seed_dir, seed, device, log)
        teacher_runs.append(t_result)
        log(
            "seed {}: teacher zero-shot top-1 base {} novel {} (chance {})".format(
                seed, *(pct(t_result[k]) for k in ("top1_base", "top1_novel", "chance"))
            )
        )
        with timer("embed"):
            embeddings = _embed_classes(root, teacher, seed_dir / "class_embeddings.pt", device)
        for method in methods:
            ctx = MethodContext(
                name=method.name,
                seed=seed,
                data_root=root,
                teacher_checkpoint=teacher,
                embeddings=embeddings,
                work_dir=seed_dir / method.name,
                device=device,
                image_size=s.image_size,
            )
            log(f"seed {seed}: training {method.name} ({method.config})")
            with timer(method.name):
                cfg, result = _train_method(method, s, ctx, prefix)
            method_runs[method.name].append(result)
            log(
                f"seed {seed}: {method.name} AP50 base {fmt(result['AP50_base'])} "
                f"novel {fmt(result['AP50_novel'])} ({result['train_time_s']:.0f}s"
                + (", reused)" if result.get("reused") else ")")
            )
            if method.name in st_runs:
                log(f"seed {seed}: self-training {method.name}")
                with timer(f"self_train_{method.name}"):
                    st = self_train_method(
                        s,
                        cfg,
                        result,
                        ctx.work_dir / "model_final.pth",
                        seed_dir / "self_train" / method.name,
                        device,
                    )
                st_runs[method.name].append(st)
                for r in st["rounds"]:
                    control = r.get("control", {})
                    log(
                        f"seed {seed}: {method.name} self-trained, round {r['round']}: AP50 base "
                        f"{fmt(r['AP50_base'])} novel {fmt(r['AP50_novel'])}"
                        + (
                            f" (gold-only control {fmt(control.get('AP50_base'))} / "
                            f"{fmt(control.get('AP50_novel'))})"
                            if control
                            else ""
                        )
                    )
            if s.export_demo is not None and export is None and method.name == s.export_method:
                from ovdet.model_zoo import export_bundle

                # this seed's ViLD-text (when trained already): the baseline in the README
                runs = {k: v[-1] for k, v in method_runs.items() if k == "vild_text" and v}
                with timer("export_demo"):
                    export = export_bundle(
                        s.export_demo,
                        cfg=cfg,
                        detector_checkpoint=Path(result["output_dir"]) / "model_final.pth",
                        teacher_checkpoint=teacher,
                        data_root=root,
                        method=method.name,
                        device=device,
                        command=s.export_command,
                        metrics={"teacher": t_result, **runs, method.name: result},
                    )

        quality = seed_dir / "teacher_regions" / "quality.json"
        if quality.is_file():  # written when a distillation method extracted region targets
            t_result["region_targets"] = json.loads(quality.read_text(encoding="utf-8"))

    teacher_keys = ("top1_base", "top1_novel", "top1_all")
    report = {
        "benchmark": "ov-shapes",
        "version": REPORT_VERSION,
        "settings": s.public(),
        "environment": environment(device),
        "data": data,
        "teacher": {"per_seed": teacher_runs, **summarise(teacher_runs, teacher_keys)},
        "methods": {
            m.name: {
                "description": m.description,
                "config": m.config,
                "per_seed": method_runs[m.name],
                **summarise(method_runs[m.name], method_keys(method_runs[m.name])),
            }
            for m in methods
        },
        "time_s": {**timer.seconds, "total": timer.total()},
        "memory_mb": peak_memory_mb(),
        "demo_export": export,
    }
    if st_runs:
        report["self_train"] = self_train_section(s, st_runs)
    write_json(out / "report.json", report, indent=2)
    return report
