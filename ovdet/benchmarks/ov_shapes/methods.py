"""Methods of the OV-Shapes benchmark: every registered ovdet method with an OV-Shapes config,
plus the oracle and the mask study's methods (:mod:`~ovdet.benchmarks.ov_shapes.masks`).

A :class:`MethodSpec` names a LazyConfig file (under ``configs/``) that trains and tests one
detector on an OV-Shapes root, and optionally a ``prepare`` function that computes extra
inputs before training and edits the loaded config to use them. :data:`BUILTIN_METHODS` is
derived from the method registry (``ovdet.methods.METHODS``): a method's
``configs["ov_shapes"]``, its ``needs`` (region targets from this seed's ViLD-text RPN and
teacher, the teacher's text tower for captions; :mod:`~ovdet.benchmarks.ov_shapes.inputs`)
and its own ``prepare`` (e.g. ViLD-ensemble's image-head temperature from the teacher). A new
method registered in ``ovdet.methods`` is benchmarked by name with no change here;
:func:`~ovdet.benchmarks.ov_shapes.run_benchmark` also takes :class:`MethodSpec` objects.

What the runner sets in every method's config before ``prepare`` runs:
``ov_shapes.root`` / ``.embeddings`` / ``.image_size`` / ``.prefix``, ``train.output_dir``,
``train.seed``, ``train.device`` and, when given, ``train.max_iter``,
``dataloader.train.total_batch_size`` and ``dataloader.{train,test}.num_workers``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ovdet.benchmarks.ov_shapes.context import MethodContext
from ovdet.benchmarks.ov_shapes.inputs import prepare_caption_encoder, prepare_region_targets
from ovdet.benchmarks.ov_shapes.masks import MASK_METHODS
from ovdet.methods import METHODS, Method, configs_dir

__all__ = [
    "BUILTIN_METHODS",
    "MethodContext",
    "MethodSpec",
    "resolve_methods",
]

logger = logging.getLogger(__name__)

# ViLD-text runs by default with the oracle; the others (they need ViLD-text's RPN) opt in
DEFAULT_METHODS = ("vild_text",)


@dataclass(frozen=True)
class MethodSpec:
    """One benchmarked method.

    Attributes:
        name: key in reports (``"vild_text"``).
        config: LazyConfig file, relative to ``configs/`` or absolute.
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


def _preparation(method: Method) -> Callable[[MethodContext, Any], None] | None:
    """The benchmark's preparation of a registered method: its needs, then its own prepare."""
    if not method.needs and method.prepare is None:
        return None

    def prepare(ctx: MethodContext, cfg: Any) -> None:
        if "region_targets" in method.needs:
            prepare_region_targets(ctx, cfg)
        if "captions" in method.needs:
            prepare_caption_encoder(ctx, cfg)
        if method.prepare is not None:
            method.prepare(cfg, ctx.teacher_checkpoint)
            logger.info("%s: prepared with teacher %s", method.name, ctx.teacher_checkpoint)

    return prepare


def _builtin_methods() -> dict[str, MethodSpec]:
    specs = {
        m.name: MethodSpec(
            m.name,
            m.configs["ov_shapes"],
            f"{m.title}: {m.summary}",
            prepare=_preparation(m),
            default=m.name in DEFAULT_METHODS,
        )
        for m in METHODS.values()
        if "ov_shapes" in m.configs
    }
    specs["oracle"] = MethodSpec(
        "oracle", "ov_shapes/oracle_small.py", "oracle: boxes of every class (the ceiling)"
    )
    # the mask study (ov_shapes/masks.py): ViLD-text's boxes, masks from elsewhere
    for name, (config, description, prepare) in MASK_METHODS.items():
        specs[name] = MethodSpec(name, config, description, prepare=prepare, default=False)
    return specs


BUILTIN_METHODS: Mapping[str, MethodSpec] = MappingProxyType(_builtin_methods())


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
