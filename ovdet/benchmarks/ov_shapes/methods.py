"""Methods of the OV-Shapes benchmark: a method = a config file + optional extra inputs.

A :class:`MethodSpec` names a LazyConfig file (under ``configs/``) that trains and tests one
detector on an OV-Shapes root, and optionally a ``prepare`` function that computes extra
inputs before training (e.g. teacher region embeddings for ViLD-image) and edits the loaded
config to use them. :data:`BUILTIN_METHODS` lists the methods ``ovdet bench ov-shapes``
knows by name; :func:`ovdet.benchmarks.ov_shapes.run_benchmark` also takes
:class:`MethodSpec` objects, so new methods need no change here to be benchmarked.

What the runner sets in every method's config before ``prepare`` runs:
``ov_shapes.root`` / ``.embeddings`` / ``.image_size`` / ``.prefix``, ``train.output_dir``,
``train.seed``, ``train.device`` and, when given, ``train.max_iter``,
``dataloader.train.total_batch_size`` and ``dataloader.{train,test}.num_workers``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "BUILTIN_METHODS",
    "MethodContext",
    "MethodSpec",
    "configs_dir",
    "resolve_methods",
]


def configs_dir() -> Path:
    """The ``configs/`` folder: ``$OVDET_CONFIGS``, else the one beside the ``ovdet`` package."""
    env = os.environ.get("OVDET_CONFIGS")
    folder = Path(env) if env else Path(__file__).resolve().parents[3] / "configs"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"ovdet configs folder {folder} not found: run from a source checkout of ovdet "
            "(pip install -e .) or set $OVDET_CONFIGS to its configs/ folder"
        )
    return folder


@dataclass(frozen=True)
class MethodContext:
    """What a method's ``prepare`` may use.

    Attributes:
        name: the method name.
        seed: the run's seed.
        data_root: dataset root (``split.json``; see ``ovdet.data.synthetic.catalog``).
        teacher_checkpoint: the pretrained CLIP teacher of this seed (``teacher.pt``, with
            its open_clip config ``teacher.json`` beside it; load with
            ``ovdet.teacher.small_clip.load_small_clip``).
        embeddings: class text embeddings of every class (``.names.txt`` sidecar).
        work_dir: this method's output folder for this seed (extra inputs go here).
        device: "cpu" or "cuda".
        image_size: training / test image size.
    """

    name: str
    seed: int
    data_root: Path
    teacher_checkpoint: Path
    embeddings: Path
    work_dir: Path
    device: str
    image_size: int


@dataclass(frozen=True)
class MethodSpec:
    """One benchmarked method.

    Attributes:
        name: key in reports (``"vild_text"``).
        config: LazyConfig file, relative to :func:`configs_dir` or absolute.
        description: one line for reports and ``--help``.
        prepare: ``prepare(context, cfg) -> None``, run after the standard fields are set:
            computes extra inputs under ``context.work_dir`` and edits ``cfg`` to use them.
        default: run when no ``--methods`` are given.
    """

    name: str
    config: str
    description: str
    prepare: Callable[[MethodContext, Any], None] | None = None
    default: bool = True

    def config_path(self) -> Path:
        """Absolute path of :attr:`config` (an error names it if it does not exist)."""
        path = Path(self.config)
        if not path.is_absolute():
            path = configs_dir() / path
        if not path.is_file():
            raise FileNotFoundError(f"method {self.name!r}: config file {path} not found")
        return path


def _prepare_distillation(context: MethodContext, cfg: Any) -> None:
    from ovdet.benchmarks.ov_shapes.distill import prepare_distillation

    prepare_distillation(context, cfg)


BUILTIN_METHODS: Mapping[str, MethodSpec] = MappingProxyType(
    {
        "vild_text": MethodSpec(
            "vild_text",
            "ov_shapes/vild_text_small.py",
            "ViLD-text: base boxes, teacher text embeddings as classifier",
        ),
        "oracle": MethodSpec(
            "oracle",
            "ov_shapes/oracle_small.py",
            "oracle: boxes of every class (the ceiling)",
        ),
        # distillation methods: opt-in, after vild_text (its RPN proposes the regions)
        "vild": MethodSpec(
            "vild",
            "ov_shapes/vild_small.py",
            "ViLD: ViLD-text + L1 distillation of CLIP region embeddings",
            prepare=_prepare_distillation,
            default=False,
        ),
        "vild_ensemble": MethodSpec(
            "vild_ensemble",
            "ov_shapes/vild_ensemble_small.py",
            "ViLD-ensemble: text head + distilled image head, geometric mean at test",
            prepare=_prepare_distillation,
            default=False,
        ),
        "rkd": MethodSpec(
            "rkd",
            "ov_shapes/rkd_small.py",
            "RKD: region L1 + inter-embedding relationship matching",
            prepare=_prepare_distillation,
            default=False,
        ),
        "hierkd": MethodSpec(
            "hierkd",
            "ov_shapes/hierkd_small.py",
            "HierKD: instance-level L1 + global image-caption InfoNCE",
            prepare=_prepare_distillation,
            default=False,
        ),
        "rkd_hierkd": MethodSpec(
            "rkd_hierkd",
            "ov_shapes/rkd_hierkd_small.py",
            "RKD + HierKD global",
            prepare=_prepare_distillation,
            default=False,
        ),
        "rkd_ensemble": MethodSpec(
            "rkd_ensemble",
            "ov_shapes/rkd_ensemble_small.py",
            "ViLD-ensemble heads, image head trained with RKD (L1 + relationship matching)",
            prepare=_prepare_distillation,
            default=False,
        ),
    }
)


def resolve_methods(
    methods: Sequence[str | MethodSpec] | None,
    registry: Mapping[str, MethodSpec] = BUILTIN_METHODS,
) -> list[MethodSpec]:
    """Method specs from names (looked up in ``registry``) or specs; None: the defaults."""
    if methods is None:
        return [m for m in registry.values() if m.default]
    out: list[MethodSpec] = []
    for i, method in enumerate(methods):
        if isinstance(method, MethodSpec):
            out.append(method)
        elif method in registry:
            out.append(registry[method])
        else:
            raise ValueError(
                f"unknown method {method!r} (index {i}); known: {sorted(registry)} "
                "(or pass a MethodSpec)"
            )
    names = [m.name for m in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"methods listed twice: {dup}")
    if not out:
        raise ValueError("no methods to run")
    return out
