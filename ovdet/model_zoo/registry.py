"""Named models: the bundles ovdet ships and the user's model cards, by name or by path.

    from ovdet.model_zoo import get_model, list_models
    spec = get_model()                       # DEFAULT_MODEL, the best shipped model
    spec = get_model("ov-shapes-vild-text")  # a shipped bundle by name
    spec = get_model("my-lvis-vild")         # a card found through $OVDET_MODELS
    spec = get_model("cards/mine.json")      # a card, or a bundle folder, by path
    loaded = spec.load(device="auto")        # LoadedModel(model, spec, text_encoder, resize)

Shipped models are bundles (:mod:`ovdet.model_zoo.bundle`) in ``ovdet/assets/models/<name>/``;
a user's checkpoints are registered by model cards (:mod:`ovdet.model_zoo.cards`) listed in
``$OVDET_MODELS``: card files or folders of ``*.json`` cards, separated by ``os.pathsep``.
Nothing is ever downloaded. Listing reads manifests and cards only; :meth:`ModelSpec.load`
checks a bundle's checksums and builds the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovdet.model_zoo.bundle import read_manifest, shipped_models_dir
from ovdet.model_zoo.cards import read_card
from ovdet.utils.errors import InputError

__all__ = [
    "DEFAULT_MODEL",
    "MODELS_ENV",
    "LoadedModel",
    "ModelSpec",
    "UnknownModelError",
    "get_model",
    "list_models",
]

DEFAULT_MODEL = "ov-shapes-rkd-ensemble"
MODELS_ENV = "OVDET_MODELS"
_METRIC_KEYS = ("AP50_base", "AP50_novel", "AP50", "AP")


class UnknownModelError(InputError):
    """A model name that is neither shipped nor registered (the message lists the known)."""


@dataclass(frozen=True)
class ModelSpec:
    """A named model, as listed: what it is, not yet loaded.

    Attributes:
        name: the name ``--model`` and :func:`get_model` take.
        description: one line.
        kind: ``"bundle"`` (shipped format, :mod:`~ovdet.model_zoo.bundle`) or ``"card"``
            (a user's model card, :mod:`~ovdet.model_zoo.cards`).
        path: the bundle folder or the card file.
        classes: the default vocabulary (None: the card names none; pass one).
        base: classes trained with boxes (empty when unknown).
        novel: classes never seen as boxes (empty when unknown).
        metrics: measured numbers: ``AP50_base``, ``AP50_novel``, ``AP50``, ``AP`` (box,
            percent) where known, and ``dataset`` (what they were measured on).
        image_size: test image size in pixels (None: the config's resize, not a square).
        source: how it was made (the command, or the card's ``source``).
    """

    name: str
    description: str
    kind: str
    path: Path
    classes: list[str] | None
    base: list[str]
    novel: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    source: str = ""

    def __hash__(self) -> int:  # usable as a key (the list fields are not hashable)
        return hash((self.name, self.kind, str(self.path)))

    def load(self, device: str = "auto") -> LoadedModel:
        """Build the model (a bundle's checksums are checked first) in eval mode.

        Args:
            device: "auto" (CUDA when available), "cpu", "cuda", "cuda:N".
        """
        from ovdet.utils.device import resolve_device

        device = resolve_device(device)
        if self.kind == "bundle":
            from detectron2.data import transforms as T

            from ovdet.model_zoo.bundle import load_bundle

            bundle = load_bundle(self.path, device=device)
            size = bundle.image_size
            resize = T.ResizeShortestEdge([size, size], max_size=size)
            return LoadedModel(bundle.model, self, bundle.text_encoder, resize)
        from ovdet.model_zoo.cards import load_card

        model, encoder, resize = load_card(read_card(self.path), device)
        return LoadedModel(model, self, encoder, resize)

    def identity(self) -> dict[str, Any]:
        """What makes this model what it is, for run manifests: ``name``, ``kind``, ``path``
        and ``sha256`` over its files' checksums (a bundle's from its verified manifest; a
        card's own content, its files' content and its encoder's files' sizes and mtimes)."""
        from ovdet.utils.io import file_sha256

        if self.kind == "bundle":
            from ovdet.model_zoo.bundle import verify_bundle

            parts: Any = verify_bundle(self.path)["files"]
        else:
            card = read_card(self.path)
            parts = {str(p): file_sha256(p) for p in (card.path, *card.files())}
            if card.text_encoder is not None:
                parts["text_encoder"] = _encoder_files(card.text_encoder)
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()
        return {"name": self.name, "kind": self.kind, "path": str(self.path), "sha256": digest}


@dataclass
class LoadedModel:
    """A loaded named model.

    Attributes:
        model: the detector (``OVRCNN``, ``GroundingRCNN``) in eval mode, its vocabulary the
            spec's classes.
        spec: what was loaded.
        text_encoder: the encoder of class names (None: only embeddings can change the
            vocabulary).
        resize: the test-time resize the model was trained for (None: the predictor's
            default).
    """

    model: Any
    spec: ModelSpec
    text_encoder: Any
    resize: Any


def _encoder_files(spec: str) -> list[str]:
    """Size and mtime of the local files of a resolved encoder spec (hashing a CLIP
    checkpoint on every run would cost seconds)."""
    found = []
    for part in spec.split(":")[1:]:
        path = Path(part)
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                st = f.stat()
                found.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
    return found


def _bundle_spec(folder: Path) -> ModelSpec:
    manifest = read_manifest(folder)
    shipped = manifest.get("metrics", {}).get("shipped_model_val") or {}
    metrics: dict[str, Any] = {k: shipped[k] for k in _METRIC_KEYS if shipped.get(k) is not None}
    if metrics:
        metrics["dataset"] = (
            "OV-Shapes val split of the training run, every class in the vocabulary; the "
            "bundle as shipped (fp16)"
        )
    size = manifest.get("image_size")
    return ModelSpec(
        name=str(manifest.get("name") or folder.name),
        description=str(manifest.get("description") or ""),
        kind="bundle",
        path=folder,
        classes=list(manifest["classes"]),
        base=list(manifest["base"]),
        novel=list(manifest["novel"]),
        metrics=metrics,
        image_size=None if size is None else int(size),
        source=str(manifest.get("command") or ""),
    )


def _card_spec(path: Path) -> ModelSpec:
    card = read_card(path)
    return ModelSpec(
        name=card.name,
        description=card.description,
        kind="card",
        path=card.path,
        classes=None if card.vocabulary is None else list(card.vocabulary),
        base=list(card.base),
        novel=list(card.novel),
        metrics=dict(card.metrics),
        image_size=card.image_size,
        source=card.source or f"model card {card.path}",
    )


def _shipped() -> dict[str, Path]:
    """Shipped bundle folders by name: the default model first, then by name."""
    root = shipped_models_dir()
    folders = sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())
    folders.sort(key=lambda p: p.name != DEFAULT_MODEL)
    return {p.name: p for p in folders}


def _card_files() -> list[Path]:
    files: list[Path] = []
    for entry in os.environ.get(MODELS_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.glob("*.json") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(
                f"${MODELS_ENV} lists {entry}, which does not exist (give model card files or "
                f"folders of them, separated by {os.pathsep!r})"
            )
    return files


def _cards() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    shipped = _shipped()
    for path in _card_files():
        spec = _card_spec(path)
        other = specs.get(spec.name)
        if spec.name in shipped or other is not None:
            where = shipped_models_dir() / spec.name if other is None else other.path
            raise InputError(
                f"model card {spec.path} (in ${MODELS_ENV}) is named {spec.name!r}, like {where}; "
                "give it another name"
            )
        specs[spec.name] = spec
    return specs


def list_models() -> list[ModelSpec]:
    """Every named model: the shipped bundles (the default first), then the cards of
    ``$OVDET_MODELS`` in the order listed.

    Raises:
        FileNotFoundError / InputError: a broken shipped manifest, or a ``$OVDET_MODELS``
            entry or card that is missing, broken or named like another model (named).
    """
    return [_bundle_spec(p) for p in _shipped().values()] + list(_cards().values())


def _known() -> str:
    shipped = list(_shipped())
    try:
        cards = list(_cards())
    except (OSError, ValueError) as exc:
        cards = [f"(${MODELS_ENV} unreadable: {exc})"]
    text = f"shipped: {', '.join(shipped)}"
    if cards:
        text += f"; from ${MODELS_ENV}: {', '.join(cards)}"
    else:
        text += f"; register your own with a model card in ${MODELS_ENV}"
    return text


def get_model(name_or_path: str | os.PathLike | ModelSpec | None = None) -> ModelSpec:
    """A model by name (shipped bundles, then ``$OVDET_MODELS`` cards), or by path (a bundle
    folder or a card file).

    Args:
        name_or_path: a name from :func:`list_models`, a path, or None for
            :data:`DEFAULT_MODEL`.

    Raises:
        UnknownModelError: an unknown name (the message lists the known ones).
        FileNotFoundError / InputError: a path that is not there, not a bundle or not a valid
            card (named, with what is wrong).
    """
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = DEFAULT_MODEL if name_or_path is None else os.fspath(name_or_path)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"model name {name_or_path!r} is empty; {_known()}")
    shipped = _shipped()
    if text in shipped and not isinstance(name_or_path, os.PathLike):
        return _bundle_spec(shipped[text])
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            return _bundle_spec(path)
        if path.name == "manifest.json":
            return _bundle_spec(path.parent)
        return _card_spec(path)
    if isinstance(name_or_path, os.PathLike) or "/" in text or os.sep in text:
        raise FileNotFoundError(
            f"model {text}: no such bundle folder or model card file (a name has no '/'; "
            f"known models: {_known()})"
        )
    cards = _cards()
    if text in cards:
        return cards[text]
    if text.endswith(".json"):
        raise FileNotFoundError(f"model card {text} not found (known models: {_known()})")
    raise UnknownModelError(
        f"unknown model {text!r}; known models: {_known()}; or give a bundle folder or a model "
        "card .json path (`ovdet models` lists them)"
    )
