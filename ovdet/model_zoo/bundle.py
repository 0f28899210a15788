"""Model bundles: the self-contained models that ship in ``ovdet/assets/models/<name>/``.

A bundle is a folder of files written by :func:`ovdet.model_zoo.export_bundle` (normally
through ``ovdet bench ov-shapes --export-demo DIR --export-method METHOD``)::

    detector.safetensors    state_dict of the trained detector, floats stored fp16
    detector.yaml           its model LazyConfig, loadable on its own (vocabulary fields left
                            empty, LazyCalls such as the ensemble's base names or a grounding
                            detector's training classes resolved, training-only distillers
                            removed)
    teacher_text.safetensors  the CLIP teacher's text tower, floats fp16; the token embedding
                            is stored as the rows of the tokens in the teacher's training text
                            (``token_embedding.rows`` + ``token_embedding.ids``)
    teacher_text.json       the teacher's open_clip model config
    manifest.json           name, method, description, sha256 and size of each file, the
                            command that made them, the class split, generator parameters,
                            prompt templates and the metrics of the export run (the model as
                            shipped, fp16, re-evaluated); for a grounding detector also
                            ``token_encoder``: how its token encoder reads a class name
                            (``template``, ``max_tokens``)
    README.md               the same, for people

Two kinds of detector load from it: an ``OVRCNN`` (ViLD-text, the ensembles, ...), whose
classifier embeddings are encoded by the text tower (``OpenCLIPTextEncoder``) at load time, and
a ``GroundingRCNN`` (``ovdet.methods.grounding``; its ``detector.yaml`` has a
``token_encoder``), whose prompts the same tower reads token by token
(``OpenCLIPTokenEncoder``).

Why fp16 and token rows: the ViLD-text detector (2.4 M parameters) and the text tower (0.6 M,
plus a 49408 x 128 token table) would be ~37 MB in fp32. Token rows outside the teacher's
training text never received a gradient, so they carry no meaning; they load as zeros.
Everything is restored to fp32 on load. So that no text is silently read from zero rows, the
bundle's encoder knows the ids it keeps (``known_tokens``, ``ovdet.text.known_tokens``) and
refuses class names (``set_vocabulary``, ``predict(vocabulary=...)``) or captions that need
any other token, naming the words.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from ovdet.utils.errors import InputError
from ovdet.utils.io import file_sha256

__all__ = [
    "BUNDLE_FILES",
    "Bundle",
    "load_bundle",
    "read_manifest",
    "shipped_models_dir",
    "verify_bundle",
]

ASSET_FORMAT = 1
BUNDLE_FILES = (
    "detector.safetensors",
    "detector.yaml",
    "teacher_text.safetensors",
    "teacher_text.json",
)
TOKEN_KEY = "token_embedding.weight"
ROWS_KEY = "token_embedding.rows"
IDS_KEY = "token_embedding.ids"
NUM_KEY = "token_embedding.num_embeddings"
_HOW = (
    "make it with `ovdet bench ov-shapes --export-demo DIR --export-method METHOD` (see its "
    "README.md)"
)


def shipped_models_dir() -> Path:
    """``ovdet/assets/models`` inside the installed package: one folder per shipped bundle."""
    return Path(__file__).resolve().parents[1] / "assets" / "models"


def to_half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU copies of ``state``, floating-point tensors as fp16 (how bundles store weights)."""
    return {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
        .contiguous()
        .clone()
        for k, v in state.items()
    }


def to_float(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with floating-point tensors as fp32 (how bundles are loaded)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """A bundle's ``manifest.json``, without checking its files (see :func:`verify_bundle`).

    Raises:
        FileNotFoundError: no bundle there (the message names the folder).
        InputError: a manifest that is not JSON, of another format, or without a field a
            bundle needs.
    """
    folder = Path(folder)
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"model bundle {folder} not found (no such folder); {_HOW}")
    if not path.is_file():
        raise FileNotFoundError(
            f"model bundle {folder}: {path.name} not found, so this is not a bundle; {_HOW}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"model bundle {folder}: {path} is not readable JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ASSET_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise InputError(
            f"model bundle {folder}: {path} has format {got!r}, this ovdet reads "
            f"{ASSET_FORMAT}; {_HOW}"
        )
    missing = [k for k in ("classes", "base", "novel", "templates", "files") if k not in manifest]
    if missing:
        raise InputError(f"model bundle {folder}: {path} has no {', '.join(missing)}; {_HOW}")
    return manifest


def verify_bundle(folder: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` and check every file's size and sha256 against it.

    Returns:
        The manifest.

    Raises:
        FileNotFoundError / InputError: naming the missing or mismatching file and how to
        make the bundle again.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name in BUNDLE_FILES:
        file = folder / name
        info = manifest["files"].get(name)
        if info is None:
            raise InputError(f"model bundle {folder}: manifest.json does not list {name}; {_HOW}")
        if not file.is_file():
            raise FileNotFoundError(f"model bundle {folder}: {file} not found; {_HOW}")
        if file.stat().st_size != info["bytes"] or file_sha256(file) != info["sha256"]:
            raise InputError(
                f"model bundle {folder}: {file} does not match its sha256 in manifest.json "
                f"(corrupt or replaced; a Git LFS pointer?); {_HOW}"
            )
    return manifest


@dataclass
class Bundle:
    """A loaded bundle.

    Attributes:
        model: ``OVRCNN`` or ``GroundingRCNN`` in eval mode; its vocabulary is every class
            (base + novel), and ``set_vocabulary(names)`` encodes new names with
            ``text_encoder``.
        text_encoder: over the teacher's text tower: an ``OpenCLIPTextEncoder`` (``OVRCNN``)
            or the detector's ``OpenCLIPTokenEncoder`` (``GroundingRCNN``); its
            ``known_tokens`` are the kept token ids, and it refuses texts needing others.
        manifest: ``manifest.json``.
        folder: where the bundle was read from.
    """

    model: nn.Module
    text_encoder: Any
    manifest: dict[str, Any]
    folder: Path

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.folder.name)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def base(self) -> list[str]:
        return list(self.manifest["base"])

    @property
    def novel(self) -> list[str]:
        return list(self.manifest["novel"])

    @property
    def image_size(self) -> int:
        return int(self.manifest["image_size"])


def _load_text_tower(folder: Path):
    """The teacher's text tower (fp32, eval mode, no image tower), its tokenizer and the ids
    of the token rows the bundle keeps (the others are zeros)."""
    from ovdet.text.clip_models import create_clip_from_config, create_clip_tokenizer

    cfg = json.loads((folder / "teacher_text.json").read_text(encoding="utf-8"))
    model = create_clip_from_config(cfg, seed=0)
    state = load_file(str(folder / "teacher_text.safetensors"))
    rows, ids = state.pop(ROWS_KEY), state.pop(IDS_KEY)
    num = int(state.pop(NUM_KEY))
    table = torch.zeros(num, rows.shape[1], dtype=torch.float32)
    table[ids] = rows.float()
    state[TOKEN_KEY] = table
    missing, unexpected = model.load_state_dict(to_float(state), strict=False)
    missing = [k for k in missing if not k.startswith("visual.")]
    if missing or unexpected:
        raise InputError(
            f"model bundle {folder}: teacher_text.safetensors does not fit teacher_text.json "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    # only the text tower is used: drop the (random) image tower
    model.visual = None
    model.eval()
    return model, create_clip_tokenizer(cfg), ids


def _known_tokens(folder: Path, manifest: dict[str, Any], kept: torch.Tensor):
    """What the bundle's encoder can read: the kept token ids, and what to say otherwise."""
    from ovdet.text.known_tokens import KnownTokens

    classes = list(manifest["classes"])
    shown = ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")
    return KnownTokens(
        kept,
        source=f"model bundle {manifest.get('name') or folder.name}",
        advice=(
            "this bundle's text tower only knows the words of its training texts, such as its "
            f"classes ({shown}; `ovdet models --json` lists them): use those words, or a "
            "model whose card names a full text encoder (docs/models.md)"
        ),
    )


def _check_kept_tokens(folder: Path, tokenizer, known, texts: list[str]) -> None:
    """Refuse a bundle whose own class prompts need token rows it does not keep."""
    from ovdet.text.known_tokens import describe_missing, missing_tokens

    shown = describe_missing(texts, missing_tokens(tokenizer, known.ids, texts))
    if shown:
        raise InputError(
            f"model bundle {folder}: the prompts of its classes need tokens that "
            f"teacher_text.safetensors does not keep (it keeps the tokens of the teacher's "
            f"training text only): {shown}; export the bundle again from a run whose "
            "teacher was trained on these class names"
        )


def _load_text_encoder(folder: Path, manifest: dict[str, Any], device: str):
    from ovdet.text import OpenCLIPTextEncoder
    from ovdet.text.templates import fill_template

    model, tokenizer, kept = _load_text_tower(folder)
    known = _known_tokens(folder, manifest, kept)
    prompts = [fill_template(t, n) for n in manifest["classes"] for t in manifest["templates"]]
    _check_kept_tokens(folder, tokenizer, known, prompts)
    return OpenCLIPTextEncoder(
        model_name=f"ovdet-bundle-teacher:{folder.name}",
        model=model,
        tokenizer=tokenizer,
        device=device,
        known_tokens=known,
    )


def _load_token_encoder(folder: Path, manifest: dict[str, Any], device: str):
    """The grounding detector's token encoder over the teacher's text tower, as the detector
    was trained with it (the manifest's ``token_encoder``: template and token budget)."""
    from ovdet.text import OpenCLIPTokenEncoder

    settings = manifest.get("token_encoder")
    if not isinstance(settings, dict) or not isinstance(settings.get("template"), str):
        raise InputError(
            f"model bundle {folder}: detector.yaml is a grounding detector (it has a "
            f"token_encoder) but manifest.json has no token_encoder.template; {_HOW}"
        )
    template = settings["template"]
    model, tokenizer, kept = _load_text_tower(folder)
    known = _known_tokens(folder, manifest, kept)
    _check_kept_tokens(folder, tokenizer, known, [template.format(n) for n in manifest["classes"]])
    return OpenCLIPTokenEncoder(
        model,
        tokenizer,
        device=device,
        max_tokens=int(settings.get("max_tokens", 256)),
        template=template,
        known_tokens=known,
    )


def load_bundle(folder: str | os.PathLike, *, device: str = "cpu", verify: bool = True) -> Bundle:
    """Load a bundle's teacher text tower and detector.

    Args:
        folder: the bundle folder (e.g. ``shipped_models_dir() / "ov-shapes-rkd-ensemble"``).
        device: "cpu" or "cuda".
        verify: check sizes and sha256 against the manifest first.

    Returns:
        :class:`Bundle` with the detector in eval mode, vocabulary = every class.

    Raises:
        FileNotFoundError / InputError: a missing, changed or inconsistent file (named), e.g.
            a bundle whose class prompts need tokens its text tower does not keep.
    """
    from detectron2.config import LazyConfig, instantiate

    from ovdet.engine.build import load_weights
    from ovdet.text import build_class_embeddings

    folder = Path(folder)
    manifest = verify_bundle(folder) if verify else read_manifest(folder)
    cfg = LazyConfig.load(str(folder / "detector.yaml"))
    if "token_encoder" in cfg.model:  # GroundingRCNN: prompts read token by token
        encoder = _load_token_encoder(folder, manifest, device)
        cfg.model.token_encoder = encoder
    else:  # OVRCNN: a classifier of class embeddings
        encoder = _load_text_encoder(folder, manifest, device)
        templates = list(manifest["templates"])
        classifier = cfg.model.roi_heads.box_predictor.classifier
        classifier.train_embeddings = build_class_embeddings(encoder, manifest["base"], templates)
        classifier.test_embeddings = build_class_embeddings(encoder, manifest["classes"], templates)
        cfg.model.templates = templates
        cfg.model.text_encoder = encoder
    cfg.model.vocabulary = list(manifest["classes"])
    model = instantiate(cfg.model)
    # through ovdet's loader: the file must fit the model (fp16 values load into fp32 weights)
    load_weights(model, folder / "detector.safetensors", field=f"model bundle {folder}")
    model.to(device).eval()
    return Bundle(model=model, text_encoder=encoder, manifest=manifest, folder=folder)
