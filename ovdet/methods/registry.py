"""The registry of ovdet's methods: what each one is, where its configs are, what it needs.

A method package (``ovdet/methods/<name>/``) holds the method's modules (heads, losses),
its config helpers and its preparation, and registers one :class:`Method` here. Tools read
the registry instead of keeping their own lists: the OV-Shapes benchmark runs
``method.configs["ov_shapes"]`` and prepares ``method.needs``; the tests build every
registered config and check that it trains with ``method.losses``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "METHODS",
    "Method",
    "NEEDS",
    "configs_dir",
    "get_method",
    "register_method",
]

# inputs a method needs beyond a detection dataset and class text embeddings:
#   region_targets  teacher region embeddings of proposals (a region store, `extract-regions`)
#   captions        a text encoder for image captions (the teacher's text tower)
NEEDS = ("region_targets", "captions")
BENCHMARKS = ("ov_coco", "ov_lvis", "ov_shapes")

_METHODS: dict[str, Method] = {}
METHODS: Mapping[str, Method] = MappingProxyType(_METHODS)


def configs_dir() -> Path:
    """The ``configs/`` folder: ``$OVDET_CONFIGS``, else the one beside the ``ovdet`` package."""
    env = os.environ.get("OVDET_CONFIGS")
    folder = Path(env) if env else Path(__file__).resolve().parents[2] / "configs"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"ovdet configs folder {folder} not found: run from a source checkout of ovdet "
            "(pip install -e .) or set $OVDET_CONFIGS to its configs/ folder"
        )
    return folder


@dataclass(frozen=True)
class Method:
    """One method of ovdet.

    Attributes:
        name: registry key, e.g. ``"vild_ensemble"``.
        title: display name, e.g. ``"ViLD-ensemble"``.
        summary: one line.
        source: the paper (or "ovdet" for combinations), as text.
        docs: anchor in ``docs/methods.md``.
        configs: benchmark (``"ov_coco"``, ``"ov_lvis"``, ``"ov_shapes"``) -> config file,
            relative to :func:`configs_dir`.
        losses: the ``loss_*`` terms the method adds to a detector's own losses in training
            (a config that loses one of its objectives is caught by the tests).
        ensemble: the method scores with ViLD-ensemble's text and image heads.
        needs: inputs beyond the dataset, from :data:`NEEDS`.
        prepare: ``prepare(cfg, teacher_checkpoint)``: method-specific settings of a loaded
            config that depend on the teacher (e.g. ViLD-ensemble's image temperature); run
            by tools that know the teacher (the OV-Shapes benchmark) before training.
    """

    name: str
    title: str
    summary: str
    source: str
    docs: str
    configs: Mapping[str, str]
    losses: tuple[str, ...] = ()
    ensemble: bool = False
    needs: frozenset[str] = field(default_factory=frozenset)
    prepare: Callable[[Any, str | os.PathLike], None] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.needs) - set(NEEDS))
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown needs {unknown}; known: {NEEDS}")
        bad = sorted(set(self.configs) - set(BENCHMARKS))
        if bad:
            raise ValueError(
                f"method {self.name!r}: configs for unknown benchmarks {bad}; known: {BENCHMARKS}"
            )
        bad_losses = [k for k in self.losses if not k.startswith("loss_")]
        if bad_losses:
            raise ValueError(
                f"method {self.name!r}: loss names must start with 'loss_': {bad_losses}"
            )

    def config_path(self, benchmark: str) -> Path:
        """Absolute path of the method's config for ``benchmark`` (errors name what is missing)."""
        if benchmark not in self.configs:
            raise KeyError(
                f"method {self.name!r} has no {benchmark} config; it has {sorted(self.configs)}"
            )
        path = configs_dir() / self.configs[benchmark]
        if not path.is_file():
            raise FileNotFoundError(f"method {self.name!r}: config file {path} not found")
        return path


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (a name registered twice is an error)."""
    if method.name in _METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name`` (an error lists the known ones)."""
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {sorted(_METHODS)}") from None
