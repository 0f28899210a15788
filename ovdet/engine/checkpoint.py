"""Read and write detectron2-format checkpoints (model-zoo ``.pkl``, ``.pth``, ``.safetensors``)
and load them into a model only when they fit it.

A checkpoint must fit the model it is loaded into: parameters of the model missing from the
file, entries of the file the model does not have and shape mismatches are refused with a
:class:`CheckpointMismatchError` that names the file, the first keys of each kind and their
counts. A partial load is an explicit choice (``partial=`` prefixes of the model's parameter
names, e.g. ``"backbone.bottom_up"`` for an ImageNet backbone; ``train.init_partial`` in a
config). A file that is not a checkpoint at all raises :class:`CheckpointFormatError`.

Vocabulary buffers (``persistent=False``, see
:class:`~ovdet.modeling.roi_heads.text_classifier.TextEmbeddingClassifier`) are not in state
dicts by design: the vocabulary comes from the config, so they are never missing.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.checkpoint.c2_model_loading import align_and_update_state_dicts
from detectron2.utils import comm
from fvcore.common.checkpoint import (
    _filter_reused_missing_keys,
    _IncompatibleKeys,
    _strip_prefix_if_present,
)
from torch import nn

from ovdet.utils.errors import InputError
from ovdet.utils.io import atomic_write, atomic_write_text

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "OVDetectionCheckpointer",
    "load_detectron2_weights",
    "normalize_partial",
]

logger = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".pkl")
_SHOW = 5  # keys named per kind in an error message
_PARTIAL_HINT = (
    "to initialise only part of the model on purpose (e.g. an ImageNet backbone before "
    "training), load it partially: load_weights(model, path, partial='backbone.bottom_up') or, "
    "in a config, train.init_partial=backbone.bottom_up"
)


class CheckpointError(InputError):
    """A file given as a checkpoint that cannot be loaded into the model."""


class CheckpointFormatError(CheckpointError):
    """The file is not a readable checkpoint (not a weights file, truncated, corrupt, empty).

    Attributes:
        reason: why, in a few words (e.g. "truncated or corrupt ...").
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was made for another model: missing / unexpected keys, other shapes.

    Attributes:
        missing: parameter names of the model that the file lacks.
        unexpected: entries of the file that the model does not have (or that lie outside the
            prefixes of a partial load).
        shapes: ``(name, shape in the file, shape in the model)``.
    """

    def __init__(
        self,
        message: str,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        shapes: Sequence[tuple[str, tuple, tuple]] = (),
    ):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.shapes = list(shapes)


def normalize_partial(partial: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``partial`` as a tuple of prefixes without trailing dots; None / "" / [] -> None."""
    if partial is None:
        return None
    if isinstance(partial, str):
        partial = [p for p in partial.split(",")]
    prefixes = tuple(str(p).strip().rstrip(".") for p in partial if str(p).strip().rstrip("."))
    return prefixes or None


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _frozen_bn_counter(model: nn.Module, key: str) -> bool:
    """Whether ``key`` is the ``num_batches_tracked`` of a layer that is a FrozenBatchNorm2d
    in ``model`` (a BatchNorm frozen by ``train.trainable``)."""
    from detectron2.layers import FrozenBatchNorm2d

    if not key.endswith(".num_batches_tracked"):
        return False
    try:
        module = model.get_submodule(key.rsplit(".", 1)[0])
    except AttributeError:
        return False
    return isinstance(module, FrozenBatchNorm2d)


def _names(keys: Sequence[str], n: int = _SHOW) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _common_module(keys: Sequence[str]) -> str:
    """The longest dotted module prefix shared by ``keys`` ("" when none)."""
    if not keys:
        return ""
    parts = [k.split(".")[:-1] for k in keys]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


def describe_file(path: Path) -> str | None:
    """What a file that is not a checkpoint looks like it is (for error messages), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file itself (run `git lfs pull`)"
    for magic, kind in (
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (b"\x1f\x8b", "a gzip archive"),
    ):
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file (it starts with {first!r})"
    return None


def _reason(exc: BaseException) -> str:
    """One short line about why a file could not be read."""
    text = " ".join(str(exc).split())
    if "central directory" in text or "zip archive" in text:
        return "truncated or corrupt (an interrupted write or download?)"
    if isinstance(exc, EOFError):
        return "it ends too early (truncated?)"
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        return (
            "it holds Python objects other than tensors, and .pth files are read with "
            "torch.load(weights_only=True)"
        )
    first = text.split(". ")[0]
    return f"{type(exc).__name__}: {first[:160]}" if first else type(exc).__name__


def _check_file(path: Path, field: str) -> None:
    """The path is an existing, non-empty file with a checkpoint suffix."""
    where = f"{field}: " if field else ""
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
        hint = f" (it holds {_names(inside, 3)})" if inside else ""
        raise IsADirectoryError(
            f"{where}{path} is a folder, not a checkpoint file{hint}; pass the checkpoint file "
            "itself, e.g. <output_dir>/model_final.pth"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{where}checkpoint {path} does not exist; check the path")
    if path.suffix not in CHECKPOINT_SUFFIXES:
        kind = describe_file(path)
        raise CheckpointFormatError(
            f"{where}{path}: unsupported checkpoint format {path.suffix!r}"
            + (f" (the file is {kind})" if kind else "")
            + "; expected a .pth / .pt (torch.save), .safetensors or detectron2 model-zoo .pkl"
        )
    if path.stat().st_size == 0:
        raise CheckpointFormatError(
            f"{where}{path} is empty (0 bytes: an interrupted copy or download?); "
            "pass a complete checkpoint",
            reason="empty file",
        )


def _validate_state(path: str, state: Any) -> None:
    """``state`` is a non-empty {name: tensor or array}."""
    if not isinstance(state, dict):
        raise CheckpointFormatError(
            f"{path}: its 'model' entry is a {type(state).__name__}, not a state dict "
            "{name: tensor}; pass a checkpoint written by torch.save(model.state_dict()) or "
            "`ovdet train`"
        )
    if not state:
        raise CheckpointFormatError(f"{path} holds no weights (an empty state dict)")
    for key, value in state.items():
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            hint = (
                f" (the weights may be under {key!r}: save that entry instead)"
                if isinstance(value, dict)
                else ""
            )
            raise CheckpointFormatError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor: not a "
                f"state dict of weights{hint}; pass a checkpoint written by "
                "torch.save(model.state_dict()) or `ovdet train`"
            )


class OVDetectionCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` that validates what it reads and loads only what fits.

    Reading:

    - ``.pkl``: detectron2 / Detectron / Caffe2 model-zoo pickles (e.g. ``R-50.pkl``), read by
      detectron2 (name-matching heuristics convert Caffe2 names). Pickles can run code when
      loaded: only load files you trust.
    - ``.pth`` / ``.pt``: ``torch.load(..., weights_only=True)``; a bare state dict or
      ``{"model": state_dict, ...}``.
    - ``.safetensors``: a flat state dict.

    Loading: the checkpoint must fit the model (see :func:`load_detectron2_weights`); with
    ``partial`` prefixes it may initialise only those parts. A refused load leaves the model
    as it was.

    Writing: checkpoints and ``last_checkpoint`` are written atomically (a kill while saving
    leaves the previous files intact, never a truncated one).

    Args:
        model: the model (a DDP wrapper is unwrapped).
        save_dir: folder of ``last_checkpoint`` and saved checkpoints ("" : none).
        partial: prefixes of the model's parameter names that a checkpoint may initialise
            alone (see :func:`load_detectron2_weights`); None: the whole model.
        save_to_disk / checkpointables: as :class:`DetectionCheckpointer`.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        partial: str | Sequence[str] | None = None,
        save_to_disk: bool | None = None,
        **checkpointables: Any,
    ):
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.partial = normalize_partial(partial)
        self._path = ""
        if self.partial:
            keys = list(self.model.state_dict())
            unknown = [p for p in self.partial if not any(_under(k, (p,)) for k in keys)]
            if unknown:
                tops = sorted({".".join(k.split(".")[:2]) for k in keys})
                raise InputError(
                    f"partial load: no parameter of the model lies under {unknown}; "
                    f"prefixes of this model: {_names(tops, 12)}"
                )

    # ------------------------------------------------------------------ reading
    def load(self, path: str, *args, **kwargs) -> dict[str, Any]:
        if path and comm.get_world_size() == 1:
            # (distributed: detectron2 handles a file present on the main worker only)
            _check_file(Path(path), "")
        self._path = str(path)
        return super().load(path, *args, **kwargs)

    def _load_file(self, filename: str) -> dict[str, Any]:
        path = Path(filename)
        suffix = path.suffix
        try:
            if suffix in (".pth", ".pt"):
                loaded = torch.load(filename, map_location="cpu", weights_only=True)
            elif suffix == ".safetensors":
                from safetensors.torch import load_file

                loaded = load_file(filename, device="cpu")
            else:
                loaded = super()._load_file(filename)  # .pkl: detectron2's model-zoo layouts
        except Exception as exc:
            raise CheckpointFormatError(*self._unreadable(path, exc)) from exc
        if not isinstance(loaded, dict):
            raise CheckpointFormatError(
                f"{path} is not a checkpoint: it holds a {type(loaded).__name__}, not a state "
                "dict {name: tensor} (or {'model': state_dict, ...}); pass a checkpoint written "
                "by torch.save(model.state_dict()) or `ovdet train`"
            )
        if "model" not in loaded:
            loaded = {"model": loaded}
        _validate_state(str(path), loaded["model"])
        return loaded

    @staticmethod
    def _unreadable(path: Path, exc: BaseException) -> tuple[str, str]:
        """(message, reason) for a file that could not be read."""
        kind = describe_file(path)
        if kind is None and path.suffix == ".pkl":
            try:  # a pickle of something else than a dict of weights
                with open(path, "rb") as f:
                    obj = pickle.load(f, encoding="latin1")
                kind = f"a pickle of a {type(obj).__name__}, not a dict of weights"
            except Exception:
                kind = None
        what = {
            ".pth": "a torch.save file",
            ".pt": "a torch.save file",
            ".safetensors": "a safetensors file",
            ".pkl": "a detectron2 model-zoo pickle",
        }[path.suffix]
        why = f"it is {kind}" if kind else _reason(exc)
        return (
            f"{path} is not a readable checkpoint ({what} was expected; {why}); pass a complete "
            "checkpoint file (.pth from `ovdet train`, .safetensors, or a detectron2 .pkl)",
            why,
        )

    # ------------------------------------------------------------------ loading
    def _load_model(self, checkpoint: dict[str, Any]) -> _IncompatibleKeys:
        state = checkpoint.pop("model")
        self._convert_ndarray_to_tensor(state)
        _strip_prefix_if_present(state, "module.")
        model_state = self.model.state_dict()
        heuristic = bool(checkpoint.get("matching_heuristics", False))
        if heuristic:
            # match model-zoo names (Caffe2 ``res2_0_branch2a_w`` ...) onto the model's, inside
            # the prefixes of a partial load only
            target = model_state
            if self.partial:
                target = {k: v for k, v in model_state.items() if _under(k, self.partial)}
            state = align_and_update_state_dicts(
                target, state, c2_conversion=checkpoint.get("__author__") == "Caffe2"
            )
        shapes = []
        for key in list(state):
            if key in model_state and not isinstance(
                model_state[key], nn.parameter.UninitializedParameter
            ):
                have, want = tuple(state[key].shape), tuple(model_state[key].shape)
                if have != want:
                    shapes.append((key, have, want))
        # old checkpoints hold anchors that are non-persistent buffers now (as detectron2);
        # a BatchNorm's step counter has no place in the FrozenBatchNorm2d it became
        # (``train.trainable``)
        unexpected = [
            k
            for k in state
            if k not in model_state
            and "anchor_generator.cell_anchors" not in k
            and not _frozen_bn_counter(self.model, k)
        ]
        loadable = {k: v for k, v in state.items() if k in model_state}
        for key, _, _ in shapes:
            loadable.pop(key)
        naive_missing = [k for k in model_state if k not in loadable]
        if shapes:  # refused before anything is loaded
            reshaped = {k for k, _, _ in shapes}
            missing = [k for k in self._real_missing(naive_missing) if k not in reshaped]
            if self.partial:
                missing = [k for k in missing if _under(k, self.partial)]
            raise self._mismatch(missing, unexpected, shapes, partial=bool(self.partial))
        snapshot = None
        if naive_missing:
            # modules may fill keys themselves (FrozenBN's running stats of Caffe2 weights): the
            # real missing keys are known after loading; undo the load if it is refused
            snapshot = {k: v.detach().clone() for k, v in model_state.items()}
        result = self.model.load_state_dict(loadable, strict=False)
        missing = self._real_missing(result.missing_keys)
        try:
            self._check_fit(missing, unexpected, loadable, heuristic)
        except CheckpointMismatchError:
            if snapshot is not None:
                self.model.load_state_dict(snapshot, strict=False)
            raise
        if missing:
            logger.info(
                "%s: %d parameters outside %s keep their initialisation",
                self._path,
                len(missing),
                self.partial,
            )
        if unexpected:
            logger.info(
                "%s: %d model-zoo entries unused (e.g. an ImageNet classifier): %s",
                self._path,
                len(unexpected),
                _names(unexpected),
            )
        return _IncompatibleKeys(missing_keys=[], unexpected_keys=[], incorrect_shapes=[])

    def _real_missing(self, missing: list[str]) -> list[str]:
        # as detectron2: pixel_mean / pixel_std come from the config; tied parameters count once
        missing = [k for k in missing if k not in ("pixel_mean", "pixel_std")]
        # the step counter of a BatchNorm loaded from a FrozenBatchNorm2d's weights (a
        # checkpoint of a ``train.trainable`` run): only used with momentum=None
        missing = [k for k in missing if not k.endswith(".num_batches_tracked")]
        missing = _filter_reused_missing_keys(self.model, missing) if missing else []
        order = {k: i for i, k in enumerate(self.model.state_dict())}
        return sorted(missing, key=lambda k: order.get(k, len(order)))

    def _check_fit(self, missing, unexpected, loadable, heuristic) -> None:
        if not missing and not unexpected:
            return  # fits the whole model (also for a partial load: e.g. a full detector)
        if not self.partial:
            raise self._mismatch(missing, unexpected, [])
        inside = [k for k in missing if _under(k, self.partial)]
        outside = [k for k in loadable if not _under(k, self.partial)]
        # a model-zoo backbone carries its ImageNet classifier: unused, not an error
        extra = [] if heuristic else unexpected
        if inside or outside or extra:
            raise self._mismatch(inside, extra + outside, [], partial=True)

    def _mismatch(self, missing, unexpected, shapes, partial: bool = False):
        model_name = type(self.model).__name__
        parts = []
        if missing:
            parts.append(
                f"{_count(len(missing), 'parameter')} of the model missing from the file "
                f"({_names(missing)})"
            )
        if unexpected:
            what = (
                f"outside {list(self.partial)} or not in the model"
                if partial
                else "not in the model"
            )
            parts.append(
                f"{_count(len(unexpected), 'entry', 'entries')} of the file {what} "
                f"({_names(unexpected)})"
            )
        if shapes:
            shown = "; ".join(
                f"{k}: {tuple(a)} in the file, {tuple(b)} in the model" for k, a, b in shapes[:3]
            )
            more = f"; ... ({len(shapes) - 3} more)" if len(shapes) > 3 else ""
            parts.append(f"{_count(len(shapes), 'parameter')} with another shape ({shown}{more})")
        if partial:
            todo = (
                f"a partial load with prefixes {list(self.partial)} takes a checkpoint that "
                "fits the whole model, or one that holds every parameter under the prefixes "
                "and nothing else; pass such a checkpoint or change the prefixes"
            )
        else:
            found = _common_module(
                [k for k in self.model.state_dict() if k not in set(missing)]
                if missing and not unexpected and not shapes
                else []
            )
            what = (
                f"all it holds lies under {found!r} (a checkpoint of that part only?)"
                if found
                else "it was made for another model or config"
            )
            todo = (
                f"{what}: pass a checkpoint of this model (e.g. model_final.pth of "
                "`ovdet train` with this config), or, " + _PARTIAL_HINT
            )
        message = f"{self._path} does not fit the model ({model_name}): " + ", ".join(parts)
        return CheckpointMismatchError(f"{message}; {todo}", missing, unexpected, shapes)

    # ------------------------------------------------------------------ writing
    def save(self, name: str, **kwargs: Any) -> None:
        """Save model and checkpointables to ``<save_dir>/<name>.pth`` atomically, then tag it
        in ``last_checkpoint`` (atomically too)."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", path)

        atomic_write(path, lambda tmp: torch.save(data, tmp), durable=True)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write_text(path, last_filename_basename, durable=True)


def load_detectron2_weights(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    partial: str | Sequence[str] | None = None,
    field: str = "",
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (typically an :class:`OVRCNN`); it must fit.

    Without ``partial`` the checkpoint must hold every parameter and persistent buffer of the
    model, nothing else, with the same shapes. With ``partial`` (prefixes of the model's
    parameter names, e.g. ``"backbone.bottom_up"``), it may instead hold exactly the
    parameters under those prefixes (the rest keep their initialisation): a backbone
    initialisation. Model-zoo pickles (``R-50.pkl``, Caffe2 names) are matched onto the
    prefixes by detectron2's name heuristics, and their unused entries (the ImageNet
    classifier) are ignored. A checkpoint that fits the whole model loads whole either way.

    Args:
        model: the model to load into (modified in place; left as it was on error).
        path: a local ``.pkl``, ``.pth``, ``.pt`` or ``.safetensors`` file.
        partial: prefixes (a list, or one string, comma-separated) for a partial load.
        field: where ``path`` came from (e.g. ``"train.init_checkpoint"``), named in errors.

    Returns:
        The checkpoint's extra entries that are not model weights (e.g. ``iteration``).

    Raises:
        FileNotFoundError / IsADirectoryError: no such file.
        CheckpointFormatError: not a checkpoint (text, image, empty, truncated, corrupt, a
            pickle of something else, an unsupported suffix).
        CheckpointMismatchError: the checkpoint does not fit the model.
    """
    path = Path(path)
    _check_file(path, field)
    checkpointer = OVDetectionCheckpointer(model, save_dir="", save_to_disk=False, partial=partial)
    try:
        extra = checkpointer.load(str(path), checkpointables=[])
    except CheckpointError as exc:
        if field:
            exc.args = (f"{field}: {exc}",)
        raise
    logger.info("Loaded weights from %s%s", path, f" (partial: {partial})" if partial else "")
    return extra
