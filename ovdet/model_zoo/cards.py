"""Model cards: a user's own checkpoint registered by a JSON file the user points at.

ovdet never downloads a model: a card names local files only. Example (paths are relative
to the card's folder; ``~`` is expanded)::

    {
      "name": "my-lvis-vild",
      "description": "ViLD on LVIS, R50-FPN mask 4x, my run of 2025-03",
      "config": "configs/ov_lvis/vild_r50_fpn_mask_d2_4x.py",
      "weights": "output/vild_lvis/model_final.pth",
      "text_encoder": "open_clip:ViT-B-32:clip/ViT-B-32.pt",
      "templates": "vild",
      "vocabulary": "lvis",
      "overrides": ["model.roi_heads.box_predictor.test_score_thresh=0.05"],
      "metrics": {"APr": 16.1, "AP": 25.5, "dataset": "LVIS v1 val"}
    }

Fields (``name``, ``config`` and ``weights`` are required; any other field is refused):

* ``name``: letters, digits, ``.``, ``_``, ``-`` (the name ``--model`` takes);
* ``description``, ``source`` (how it was made): text;
* ``config``: a LazyConfig file (trusted: executed); ``weights``: its checkpoint;
* ``text_encoder``: an encoder spec of :func:`ovdet.text.build_text_encoder` with local files
  only (``open_clip:ARCH:CHECKPOINT``, ``open_clip:local-dir:FOLDER``,
  ``open_clip-config:CONFIG_JSON:CHECKPOINT``, ``hf:FOLDER``): the encoder the detector was
  trained with, so that any class names can be detected;
* or ``embeddings`` (a (C, D) file from ``ovdet embed-text``) + ``names`` (its names file,
  default the ``.names.txt`` sidecar): a fixed vocabulary for a model without an encoder;
* ``templates``: a template set name (``"vild"``, ``"ensemble"``, ...) or a list;
* ``vocabulary``: the default vocabulary, a spec of :func:`ovdet.text.resolve_vocabulary`
  (``"lvis"``, ``"cat,dog"``, a names file, a list); with ``embeddings``, a subset of its
  names (default all of them);
* ``base`` / ``novel``: lists of class names (told apart in pictures and the web page);
* ``overrides``: ``key=value`` config overrides; ``metrics``: measured numbers (``AP50_base``,
  ``AP50_novel``, ... and a ``dataset`` text); ``image_size``: the test size, for display.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError

__all__ = ["CARD_FIELDS", "ModelCard", "load_card", "read_card"]

CARD_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "source": (str,),
    "config": (str,),
    "weights": (str,),
    "text_encoder": (str,),
    "embeddings": (str,),
    "names": (str,),
    "templates": (str, list),
    "vocabulary": (str, list),
    "base": (list,),
    "novel": (list,),
    "overrides": (list,),
    "metrics": (dict,),
    "image_size": (int,),
}
REQUIRED = ("name", "config", "weights")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelCard:
    """A validated model card; every path absolute."""

    path: Path
    name: str
    config: Path
    weights: Path
    description: str = ""
    source: str = ""
    text_encoder: str | None = None
    embeddings: Path | None = None
    names: Path | None = None
    templates: list[str] | None = None
    vocabulary: list[str] | None = None
    base: list[str] = field(default_factory=list)
    novel: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None

    def files(self) -> list[Path]:
        """The local files the model is made of (config, weights, embeddings, names)."""
        return [p for p in (self.config, self.weights, self.embeddings, self.names) if p]


def _local(card: Path, value: str, what: str, *, folder: bool = False, hint: str = "") -> Path:
    """``value`` as a path relative to the card's folder, which must exist."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (card.parent / path).resolve()
    kind = "folder" if folder else "file"
    if not path.exists() or (path.is_dir() != folder):
        state = "not found" if not path.exists() else f"is not a {kind}"
        raise FileNotFoundError(
            f"model card {card}: {what} {path} {state} (paths are relative to the card's "
            f"folder{'; ' + hint if hint else ''})"
        )
    return path


def _encoder_spec(card: Path, spec: str) -> str:
    """The card's encoder spec with its local files made absolute; tags and random weights
    are refused (a card never downloads)."""
    from ovdet.text import parse_encoder_spec

    where = f"model card {card}: text_encoder {spec!r}"
    try:
        kind, target, weights = parse_encoder_spec(spec)
    except ValueError as exc:
        raise InputError(f"model card {card}: text_encoder: {exc}") from exc
    local_only = "a model card names local files only: ovdet downloads nothing"
    if kind == "hf":
        return f"hf:{_local(card, target, 'text_encoder folder', folder=True)}"
    if kind == "open_clip" and target.startswith("local-dir:"):
        folder = _local(card, target[len("local-dir:") :], "text_encoder folder", folder=True)
        return f"open_clip:local-dir:{folder}"
    if weights is None:
        raise InputError(
            f"{where} has no weights: give {kind}:{target}:CHECKPOINT (a local file; "
            f"{local_only}, and random weights detect nothing)"
        )
    checkpoint = _local(card, weights, "text_encoder checkpoint", hint=f"not a tag: {local_only}")
    if kind == "open_clip-config":
        target = str(_local(card, target, "text_encoder config"))
    resolved = f"{kind}:{target}:{checkpoint}"
    if resolved.count(":") != 2:
        raise InputError(f"{where}: a resolved path contains ':' ({resolved}); move the files")
    return resolved


def _vocabulary(card: Path, value: Any, what: str) -> list[str]:
    from ovdet.text import resolve_vocabulary
    from ovdet.text.vocabulary import looks_like_path

    try:
        if isinstance(value, str) and (looks_like_path(value) or (card.parent / value).is_file()):
            return resolve_vocabulary(str(_local(card, value, f"{what} file")), kind="file")
        return resolve_vocabulary(value, kind="names" if isinstance(value, str) else "auto")
    except (ValueError, TypeError) as exc:
        raise InputError(f"model card {card}: {what}: {exc}") from exc


def _templates(card: Path, value: Any) -> list[str]:
    from ovdet.text import get_templates, validate_templates

    try:
        return get_templates(value) if isinstance(value, str) else validate_templates(value)
    except (ValueError, TypeError) as exc:
        raise InputError(f"model card {card}: templates: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise IsADirectoryError(f"model card {path} is a folder; give the card's .json file")
    if not path.is_file():
        raise FileNotFoundError(f"model card {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"model card {path} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(
            f"model card {path} holds a json {type(data).__name__}; a card is an object with "
            f"the fields {', '.join(CARD_FIELDS)}"
        )
    return data


def read_card(path: str | os.PathLike) -> ModelCard:
    """Read and check a model card: fields, types and every file it names.

    Raises:
        FileNotFoundError: the card or a file it names does not exist (named).
        InputError: not a JSON object, a missing, unknown or mistyped field, a bad name,
            encoder spec, template set or vocabulary (the message names the card and field).
    """
    path = Path(path).expanduser().absolute()
    data = _read_json(path)
    unknown = sorted(set(data) - set(CARD_FIELDS))
    if unknown:
        raise InputError(
            f"model card {path}: unknown field(s) {unknown}; a card has {', '.join(CARD_FIELDS)}"
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InputError(
            f"model card {path}: missing field(s) {missing} (required: {', '.join(REQUIRED)})"
        )
    for key, value in data.items():
        types = CARD_FIELDS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            wanted = " or ".join(t.__name__ for t in types)
            raise InputError(f"model card {path}: field {key!r} must be a {wanted}, got {value!r}")
    name = data["name"]
    if not NAME_RE.match(name):
        raise InputError(
            f"model card {path}: name {name!r} must be letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    if "names" in data and "embeddings" not in data:
        raise InputError(f"model card {path}: 'names' names the rows of 'embeddings'; add it")
    for key in ("overrides", "base", "novel"):
        if not all(isinstance(v, str) for v in data.get(key, [])):
            raise InputError(f"model card {path}: {key!r} must be a list of strings")
    embeddings = names = None
    vocabulary = (
        _vocabulary(path, data["vocabulary"], "vocabulary") if "vocabulary" in data else None
    )
    if "embeddings" in data:
        from ovdet.text import names_path

        embeddings = _local(path, data["embeddings"], "embeddings")
        names = (
            _local(path, data["names"], "names")
            if "names" in data
            else _local(path, str(names_path(embeddings)), "names (the embeddings' sidecar)")
        )
        rows = _vocabulary(path, str(names), "names")
        extra = [n for n in vocabulary or [] if n not in rows]
        if extra:
            raise InputError(
                f"model card {path}: vocabulary names {extra[:5]} are not rows of the "
                f"embeddings {embeddings} (its names: {names})"
            )
        vocabulary = vocabulary or rows
    return ModelCard(
        path=path,
        name=name,
        config=_local(path, data["config"], "config"),
        weights=_local(path, data["weights"], "weights"),
        description=data.get("description", ""),
        source=data.get("source", ""),
        text_encoder=_encoder_spec(path, data["text_encoder"]) if "text_encoder" in data else None,
        embeddings=embeddings,
        names=names,
        templates=_templates(path, data["templates"]) if "templates" in data else None,
        vocabulary=vocabulary,
        base=list(data.get("base", [])),
        novel=list(data.get("novel", [])),
        overrides=list(data.get("overrides", [])),
        metrics=dict(data.get("metrics", {})),
        image_size=data.get("image_size"),
    )


def load_card(card: ModelCard, device: str):
    """Build a card's model: config + overrides, text encoder or embeddings, weights (they
    must fit), default vocabulary.

    Returns:
        ``(model in eval mode, text encoder or None, test resize augmentation or None)``.
    """
    from detectron2.data import transforms as T

    from ovdet.engine.build import (
        build_model,
        is_yacs_config,
        load_config,
        load_weights,
        test_augmentations,
    )
    from ovdet.text import build_class_embeddings, build_text_encoder, load_class_embeddings

    where = f"model card {card.path}"
    cfg = load_config(card.config, card.overrides)
    if is_yacs_config(cfg):
        raise InputError(f"{where}: config {card.config} is a yacs config; give a LazyConfig")
    encoder = None
    if card.text_encoder is not None:
        encoder = build_text_encoder(card.text_encoder, device=device)
        cfg.model.text_encoder = encoder
    if card.templates is not None:
        cfg.model.templates = list(card.templates)
    emb = None
    if card.embeddings is not None:
        emb = load_class_embeddings(
            card.embeddings, vocabulary=str(card.names), select=card.vocabulary
        )
    classifier = cfg.model.roi_heads.box_predictor.get("classifier")
    if classifier is not None and classifier.get("train_embeddings") is None:
        # a config without embeddings (e.g. a bundle's detector.yaml): the card's vocabulary
        # gives the classifier its shape (eval mode scores the vocabulary set below)
        if emb is None and card.vocabulary and encoder is not None:
            templates = list(cfg.model.get("templates") or ["a {}."])
            emb = build_class_embeddings(encoder, card.vocabulary, templates)
        if emb is None:
            raise InputError(
                f"{where}: config {card.config} gives the classifier no class embeddings; add "
                "'vocabulary' with 'text_encoder', or 'embeddings', to the card"
            )
        classifier.train_embeddings = emb
        classifier.test_embeddings = None
        cfg.model.vocabulary = list(card.vocabulary)
    model = build_model(cfg, device)
    load_weights(model, card.weights, field=f"{where}: weights")
    model.eval()
    if card.embeddings is not None:
        model.set_vocabulary(emb.to(next(model.parameters()).device), card.vocabulary)
    elif card.vocabulary and list(model.vocabulary) != card.vocabulary:
        if model.text_encoder is None:
            raise InputError(
                f"{where}: a vocabulary of names needs a text encoder: add 'text_encoder' (or "
                "'embeddings' + 'names')"
            )
        model.set_vocabulary(card.vocabulary)
    resize = next(
        (a for a in test_augmentations(cfg) if isinstance(a, (T.ResizeShortestEdge, T.Resize))),
        None,
    )
    return model, model.text_encoder, resize
