"""The registry of ovdet's methods: what each one is, where its configs are, what it needs.

A method package (``ovdet/methods/<name>/``) holds the method's modules (heads, losses),
its config helpers and its preparation, and registers one :class:`Method` here. Tools read
the registry instead of keeping their own lists: the OV-Shapes benchmark runs
``method.configs["ov_shapes"]`` and prepares ``method.needs``; the tests build every
registered config (defaults, variants and base stages) and check that it trains with exactly
``method.losses_for(config)``.

Per benchmark a method has one default config, its published recipe (docs/recipes.md), and
may have variants (e.g. ``"d2_1x"``: ovdet's detectron2-standard recipe) and a base config
(a detector its default config starts from, trained first: RKD's base model). A config whose
loss terms or inputs differ from the method's defaults says so in ``config_losses`` /
``config_needs`` (e.g. HierKD's official instance level on OV-COCO against ViLD-image's L1 on
OV-Shapes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "BENCHMARKS",
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
#   online_teacher  CLIP image weights for a region teacher run during training (HierKD's
#                   official instance level)
NEEDS = ("region_targets", "captions", "online_teacher")
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
        configs: benchmark (``"ov_coco"``, ``"ov_lvis"``, ``"ov_shapes"``) -> the default config
            file, relative to :func:`configs_dir` (on OV-COCO / OV-LVIS: the published recipe,
            or the closest official one; docs/recipes.md).
        losses: the ``loss_*`` terms the method adds to a detector's own losses in training
            (a config that loses one of its objectives is caught by the tests); the default
            of every config of the method, see ``config_losses``.
        ensemble: the method scores with ViLD-ensemble's text and image heads.
        needs: inputs beyond the dataset, from :data:`NEEDS`; default of every config, see
            ``config_needs``.
        prepare: ``prepare(cfg, teacher_checkpoint)``: method-specific settings of a loaded
            config that depend on the teacher (e.g. ViLD-ensemble's image temperature); run
            by tools that know the teacher (the OV-Shapes benchmark) before training.
        variants: benchmark -> {variant name -> config file}: other recipes of the method
            (e.g. ``{"ov_coco": {"d2_1x": "ov_coco/vild_r50_fpn_d2_1x.py"}}``).
        base_configs: benchmark -> config of the detector the default config is initialised
            from (trained first, without the method's losses), e.g. RKD's base model.
        config_losses: config file -> its ``loss_*`` terms where they differ from ``losses``.
        config_needs: config file -> its inputs where they differ from ``needs``.
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
    variants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    base_configs: Mapping[str, str] = field(default_factory=dict)
    config_losses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config_needs: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for needs in (self.needs, *self.config_needs.values()):
            unknown = sorted(set(needs) - set(NEEDS))
            if unknown:
                raise ValueError(f"method {self.name!r}: unknown needs {unknown}; known: {NEEDS}")
        for what, keys in (
            ("configs", self.configs),
            ("variants", self.variants),
            ("base_configs", self.base_configs),
        ):
            bad = sorted(set(keys) - set(BENCHMARKS))
            if bad:
                raise ValueError(
                    f"method {self.name!r}: {what} for unknown benchmarks {bad}; known: "
                    f"{BENCHMARKS}"
                )
        for losses in (self.losses, *self.config_losses.values()):
            bad_losses = [k for k in losses if not k.startswith("loss_")]
            if bad_losses:
                raise ValueError(
                    f"method {self.name!r}: loss names must start with 'loss_': {bad_losses}"
                )
        own = {path for _, _, path in self.all_configs()}
        stray = sorted((set(self.config_losses) | set(self.config_needs)) - own)
        if stray:
            raise ValueError(
                f"method {self.name!r}: config_losses / config_needs name configs the method "
                f"does not have: {stray}"
            )

    def all_configs(self) -> list[tuple[str, str, str]]:
        """Every config of the method as ``(benchmark, role, file)``; role is ``"default"``,
        ``"base"`` or a variant name."""
        out = [(b, "default", path) for b, path in self.configs.items()]
        out += [(b, "base", path) for b, path in self.base_configs.items()]
        out += [
            (b, variant, path)
            for b, variants in self.variants.items()
            for variant, path in variants.items()
        ]
        return out

    def losses_for(self, config: str) -> tuple[str, ...]:
        """The ``loss_*`` terms the method adds when training ``config`` (a file relative to
        :func:`configs_dir`); a base config trains the detector alone (none)."""
        if config in self.base_configs.values():
            return ()
        return tuple(self.config_losses.get(config, self.losses))

    def needs_for(self, config: str) -> frozenset[str]:
        """The inputs ``config`` needs beyond the dataset (see ``needs``)."""
        if config in self.base_configs.values():
            return frozenset()
        return frozenset(self.config_needs.get(config, self.needs))

    def config_path(self, benchmark: str, variant: str | None = None) -> Path:
        """Absolute path of the method's config for ``benchmark``: the default one, or
        ``variant`` (a variant name, or ``"base"``). Errors name what is missing."""
        if variant is None or variant == "default":
            table, where = self.configs, f"{benchmark} config"
            key = benchmark
        elif variant == "base":
            table, where, key = self.base_configs, f"{benchmark} base config", benchmark
        else:
            table = self.variants.get(benchmark, {})
            where, key = f"{benchmark} config variant {variant!r}", variant
        if key not in table:
            known = sorted(self.configs) if variant in (None, "default") else sorted(table)
            raise KeyError(f"method {self.name!r} has no {where}; it has {known}")
        path = configs_dir() / table[key]
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
