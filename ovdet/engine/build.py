"""Config in, model out: the one place where ovdet loads a config, builds a model and loads
its weights (``ovdet detect``, ``eval``, ``extract-regions``, the predictor, the benchmark).

Two kinds of config are read:

- a LazyConfig ``.py`` / ``.yaml`` file (ovdet's own configs, with a ``model`` field), or an
  already loaded one;
- a detectron2 yacs ``.yaml`` (``MODEL.META_ARCHITECTURE`` ...), e.g. a model-zoo RPN used
  as a proposal source.

Config files are Python and are executed when loaded: load only configs you trust.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ovdet.utils.device import resolve_device
from ovdet.utils.errors import InputError

__all__ = [
    "ConfigError",
    "apply_overrides",
    "build_model",
    "as_data",
    "config_as_data",
    "config_keys",
    "is_yacs_config",
    "load_config",
    "load_weights",
    "model_from_config",
    "test_augmentations",
]


def as_data(value: Any) -> Any:
    """A LazyConfig container (dicts, lists, scalars) as JSON-able data, callables by their
    qualified name and anything else by ``repr``."""
    if isinstance(value, dict):
        return {str(k): as_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_data(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
    return repr(value)


def config_as_data(cfg: Any) -> Any:
    """A LazyConfig (or a node of one) as JSON-able data, unresolved (``${...}`` kept): what
    the benchmark writes as ``config.json`` and what config digests hash."""
    from omegaconf import OmegaConf

    return as_data(OmegaConf.to_container(cfg, resolve=False))


def is_yacs_config(cfg: Any) -> bool:
    """True for a detectron2 yacs ``CfgNode`` (as opposed to a LazyConfig)."""
    from detectron2.config import CfgNode

    return isinstance(cfg, CfgNode)


class ConfigError(InputError):
    """A config file that cannot be loaded, or an override that cannot be applied."""


def _is_yacs_file(path: Path) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        return False  # e.g. a LazyConfig dump with Python tags: LazyConfig reads it
    return isinstance(data, dict) and "MODEL" in data and "model" not in data


# ------------------------------------------------------------------------------ overrides
OVERRIDE_SYNTAX = (
    "write KEY=VALUE (Hydra's override syntax: VALUE a number, true/false, null, a string, "
    "quoted when it holds , = ( ) [ ] {} or spaces at its ends, a list [a,b] or a dict {k:v}); "
    "+KEY=VALUE adds a key that the config does not have"
)


def config_keys(cfg: Any) -> list[str]:
    """Every dotted key path of a LazyConfig, groups included (``train``, ``train.max_iter``,
    ``dataloader.train.mapper.augmentations.0`` ...), without resolving interpolations."""
    from omegaconf import OmegaConf

    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for k, v in items:
            key = f"{prefix}{k}"
            keys.append(key)
            walk(v, key + ".")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def suggest_keys(key: str, keys: Sequence[str], n: int = 3) -> list[str]:
    """The valid keys closest to ``key`` (difflib ratio on the dotted paths, then on the leaves
    under the same parent): the best match and those nearly as close, at most ``n``."""
    import difflib

    def best(word: str, words: Sequence[str]) -> list[str]:
        scored = sorted(
            ((difflib.SequenceMatcher(None, word, w).ratio(), w) for w in set(words)),
            reverse=True,
        )
        if not scored or scored[0][0] < 0.6:
            return []
        return [w for r, w in scored[:n] if r >= max(0.6, scored[0][0] - 0.05)]

    close = best(key, keys)
    if not close:  # a typo in a short leaf of a long path: compare the leaves under the parent
        parent, _, leaf = key.rpartition(".")
        siblings = [k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == parent]
        close = [f"{parent}.{x}" if parent else x for x in best(leaf, siblings)]
    return close


def _override_error(text: str, problem: str, todo: str = OVERRIDE_SYNTAX) -> ConfigError:
    return ConfigError(f"config override {text!r}: {problem}; {todo}")


def _parse_override(text: str):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if text.startswith("-") and not text.startswith("~"):
        raise _override_error(
            text, "this is a command-line option, not an override", "overrides are KEY=VALUE"
        )
    if "=" not in text and not text.startswith("~"):
        raise _override_error(text, "no '=' in it", "write KEY=VALUE, e.g. train.max_iter=100")
    try:
        override = OverridesParser.create().parse_overrides([text])[0]
    except HydraException as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = next((ln for ln in lines if not ln.startswith(("Error parsing", "See http"))), "")
        value = text.partition("=")[2]
        if value.startswith("("):
            why = "tuples are written as lists, [a,b]"
        elif "LexerNoViableAlt" in why or not why:
            why = "Hydra cannot read it (a key is letters, digits, _ and dots; no spaces)"
        raise _override_error(text, why) from exc
    if override.is_delete():
        raise _override_error(
            text, "deleting keys is not supported", "set the key to null instead (KEY=null)"
        )
    if override.is_sweep_override():
        raise _override_error(
            text,
            "a comma-separated value is a sweep in Hydra's syntax",
            "quote it for a string ('a,b') or write a list [a,b]",
        )
    return override


def _check_override(cfg: Any, text: str, keys: list[str]):
    """The parsed override, after checking that its key exists (or is added on purpose) and
    that its value can stand where it goes."""
    from omegaconf import OmegaConf

    override = _parse_override(text)
    key, value = override.key_or_group, override.value()
    if value == "None":
        raise _override_error(
            text,
            "None is written null in overrides (None would be the text 'None')",
            f"write {key}=null",
        )
    parts = key.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        node = OmegaConf.select(cfg, prefix, default=None, throw_on_resolution_failure=False)
        if node is not None and not OmegaConf.is_config(node):
            raise _override_error(
                text,
                f"{prefix} is a value ({type(node).__name__}), not a group of keys",
                f"set {prefix}=VALUE itself",
            )
    exists = key in keys
    if override.is_add() and exists:
        raise _override_error(
            text,
            f"{key} exists already ('+' adds a new key)",
            f"write {key}=VALUE to change it (or ++{key}=VALUE: add or change)",
        )
    if not exists and not override.is_add() and not override.is_force_add():
        close = suggest_keys(key, keys)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise _override_error(
            text,
            f"{key} is not a key of the config",
            f"{hint}To add a new key on purpose write +{key}={text.partition('=')[2]}",
        )
    if exists:
        old = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        number = isinstance(old, (int, float)) and not isinstance(old, bool)
        if number and isinstance(value, str) and not value.startswith("${"):
            raise _override_error(
                text, f"{key} is a number ({old}), {value!r} is not one", f"write {key}=<number>"
            )
    return override


def apply_overrides(cfg: Any, overrides: Sequence[str]) -> Any:
    """Apply ``key=value`` overrides to a LazyConfig, refusing keys it does not have.

    Overrides use Hydra's syntax (https://hydra.cc/docs/advanced/override_grammar/basic/):
    ``train.max_iter=100``, ``model.vocabulary=[cat,dog]``, ``train.init_checkpoint=null``.
    A key the config does not have is refused with the closest valid keys
    (``train.max_itr=3``: did you mean train.max_iter?); add one on purpose with
    ``+key=value`` (``++key=value``: add or change).

    Raises:
        ConfigError: naming the override, what is wrong with it and what to write.
    """
    from detectron2.config import LazyConfig

    for text in overrides:
        text = str(text)
        override = _check_override(cfg, text, config_keys(cfg))
        LazyConfig.apply_overrides(cfg, [f"{override.key_or_group}={text.partition('=')[2]}"])
    return cfg


def _apply_yacs_overrides(cfg: Any, overrides: list[str]) -> Any:
    if len(overrides) % 2:
        raise ConfigError(
            f"yacs config overrides come in KEY VALUE pairs; got an odd number: {overrides}"
        )
    try:
        cfg.merge_from_list(overrides)
    except (KeyError, ValueError, AssertionError) as exc:
        raise ConfigError(f"yacs config override {overrides}: {exc}") from exc
    return cfg


# ------------------------------------------------------------------------------ files
def _exec_location(exc: BaseException, path: Path) -> str:
    """Where in the config file ``path`` an exception was raised: " (line N)", or ""."""
    tb, line = exc.__traceback__, None
    target = str(path.resolve())
    while tb is not None:
        if str(Path(tb.tb_frame.f_code.co_filename).resolve()) == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def _load_lazy_file(path: Path) -> Any:
    from detectron2.config import LazyConfig

    if path.suffix not in (".py", ".yaml", ".yml"):
        raise ConfigError(
            f"config file {path} is not a LazyConfig: a config is a Python .py (or .yaml) file "
            "such as configs/ov_shapes/vild_text_small.py"
        )
    try:
        cfg = LazyConfig.load(str(path))
    except SyntaxError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, SyntaxError) else exc
        raise ConfigError(
            f"config file {path} is not valid Python: {cause.msg} (line {cause.lineno}); a "
            "config is a Python LazyConfig file such as configs/ov_shapes/vild_text_small.py"
        ) from exc
    except Exception as exc:
        import yaml

        if isinstance(exc, yaml.YAMLError):
            what = " ".join(str(exc).split())
            raise ConfigError(f"config file {path} is not valid YAML: {what}") from exc
        raise ConfigError(
            f"config file {path} raised {type(exc).__name__} when executed"
            f"{_exec_location(exc, path)}: {' '.join(str(exc).split())}; fix the config or "
            "what it names (config files are Python, run when loaded)"
        ) from exc
    if "model" not in cfg:
        names = ", ".join(sorted(cfg)) or "none"
        raise ConfigError(
            f"config file {path} has no 'model' field (its top-level names: {names}); an ovdet "
            "config defines model = L(OVRCNN)(...), e.g. by importing "
            "configs/common/models/ov_rcnn_fpn.py"
        )
    return cfg


def load_config(config: str | os.PathLike | Any, overrides: Sequence[str] = ()) -> Any:
    """Load a LazyConfig (or detectron2 yacs) file and apply ``key=value`` overrides.

    Args:
        config: a config file, or a config already loaded (returned with the overrides).
        overrides: ``key=value`` strings (LazyConfig; see :func:`apply_overrides`: unknown
            keys are refused, ``+key=value`` adds one) or ``KEY value`` pairs flattened as
            ``["KEY", "value", ...]`` (yacs).

    Returns:
        The LazyConfig (``omegaconf.DictConfig``) or the yacs ``CfgNode``.

    Raises:
        FileNotFoundError / IsADirectoryError: no such config file.
        ConfigError: a file that is not a config (not Python, raises when executed, no
            ``model`` field) or an override that cannot be applied.
    """
    from detectron2.config import get_cfg

    overrides = list(overrides)
    if not isinstance(config, (str, os.PathLike)):
        if is_yacs_config(config):
            return _apply_yacs_overrides(config, overrides)
        return apply_overrides(config, overrides)
    path = Path(config)
    if path.is_dir():
        raise IsADirectoryError(
            f"config file {path} is a folder; pass a config file, e.g. "
            "configs/ov_shapes/vild_text_small.py"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"config file {path} not found; pass a LazyConfig .py file, e.g. "
            "configs/ov_shapes/vild_text_small.py"
        )
    if _is_yacs_file(path):
        cfg = get_cfg()
        try:
            cfg.merge_from_file(str(path))
        except Exception as exc:
            raise ConfigError(f"yacs config file {path}: {' '.join(str(exc).split())}") from exc
        return _apply_yacs_overrides(cfg, overrides)
    return apply_overrides(_load_lazy_file(path), overrides)


def build_model(cfg: Any, device: str | torch.device | None = "auto") -> nn.Module:
    """Instantiate the model of a loaded config on ``device`` (see :mod:`ovdet.utils.device`)."""
    device = resolve_device(device)
    if is_yacs_config(cfg):
        from detectron2.modeling import build_model as build_yacs_model

        cfg = cfg.clone()
        cfg.MODEL.DEVICE = device
        return build_yacs_model(cfg)
    from detectron2.config import instantiate

    if "model" not in cfg:
        raise ConfigError(
            "the config has no 'model' field: an ovdet LazyConfig defines model = L(OVRCNN)(...)"
        )
    return instantiate(cfg.model).to(device)


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    partial: str | Sequence[str] | None = None,
    field: str = "",
) -> dict[str, Any]:
    """Load a checkpoint into ``model``: ``.pth``/``.pt`` (``weights_only``), ``.safetensors``
    or a detectron2 model-zoo ``.pkl``. It must fit the model (every parameter, nothing else,
    same shapes), unless ``partial`` says which part it initialises.

    Args:
        model: the model (left as it was when the checkpoint is refused).
        path: the checkpoint file.
        partial: prefixes of parameter names for a partial load, e.g. ``"backbone.bottom_up"``
            (an ImageNet backbone such as detectron2's ``R-50.pkl``): the checkpoint then holds
            exactly those parameters, or fits the whole model (see
            :func:`~ovdet.engine.checkpoint.load_detectron2_weights`).
        field: where ``path`` came from (``"--weights"``, ``"train.init_checkpoint"``), named
            in errors.

    Returns:
        The checkpoint's entries that are not model weights (e.g. ``iteration``).

    Raises:
        FileNotFoundError / IsADirectoryError, :class:`~ovdet.engine.checkpoint.
        CheckpointFormatError` (not a checkpoint), :class:`~ovdet.engine.checkpoint.
        CheckpointMismatchError` (made for another model): the message names the file and keys.
    """
    from ovdet.engine.checkpoint import load_detectron2_weights

    return load_detectron2_weights(model, path, partial=partial, field=field)


def model_from_config(
    config: str | os.PathLike | Any,
    weights: str | os.PathLike | None = None,
    *,
    overrides: Sequence[str] = (),
    device: str | torch.device | None = "auto",
) -> tuple[nn.Module, Any]:
    """Load a config, build its model, load ``weights`` and put the model in eval mode.

    Args:
        config: config file or loaded config.
        weights: checkpoint path; None keeps the initialisation (random weights: tests).
        overrides: config overrides (see :func:`load_config`).
        device: "auto", "cpu", "cuda", ...

    Returns:
        (model in eval mode, the loaded config).
    """
    cfg = load_config(config, overrides)
    model = build_model(cfg, device)
    if weights is not None:
        load_weights(model, weights, field="weights")
    return model.eval(), cfg


def test_augmentations(cfg: Any) -> list:
    """The test-time augmentations of a config, instantiated.

    LazyConfig: ``dataloader.test.mapper.augmentations``; yacs: ``ResizeShortestEdge`` of
    ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``; neither: detectron2's 800 x 1333 resize.
    """
    from detectron2.config import instantiate
    from detectron2.data import transforms as T

    if is_yacs_config(cfg):
        size = cfg.INPUT.MIN_SIZE_TEST
        return [T.ResizeShortestEdge([size, size], cfg.INPUT.MAX_SIZE_TEST)]
    try:
        augs = cfg.dataloader.test.mapper.augmentations
    except (AttributeError, KeyError):
        augs = None
    if augs is None:
        return [T.ResizeShortestEdge([800, 800], 1333)]
    return [aug if isinstance(aug, T.Augmentation) else instantiate(aug) for aug in augs]
