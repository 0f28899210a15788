"""Building SAM: the registry's models (``vit_b``/``vit_l``/``vit_h``) from a checkpoint, a
tiny random SAM (:func:`build_small_sam`) for tests and the offline world, and the
``TYPE:CHECKPOINT`` specs of ``ovdet detect --sam`` (:func:`sam_from_spec`).

Checkpoints are plain state dicts (as Meta ships them, or ``torch.save(sam.state_dict())``),
read with ``torch.load(..., weights_only=True)``: nothing in them is executed.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ovdet.utils.errors import InputError

SAM_TYPES = ("vit_b", "vit_l", "vit_h", "small")


def shipped_sams_dir() -> Path:
    """Where ovdet's shipped SAMs live: ``ovdet/assets/sam/<name>/`` (``manifest.json`` with
    ``type``, ``file``, ``sha256``)."""
    return Path(__file__).resolve().parents[2] / "assets" / "sam"


def shipped_sam_names() -> list[str]:
    """The names ``--sam`` takes for the shipped SAMs."""
    root = shipped_sams_dir()
    return sorted(p.parent.name for p in root.glob("*/manifest.json")) if root.is_dir() else []


def resolve_shipped_sam(name: str) -> tuple[str, Path] | None:
    """(type, checkpoint path) of a shipped SAM, its sha256 checked; None for another name.

    Raises:
        InputError: the shipped file is missing or does not match its recorded sha256.
    """
    import json

    from ovdet.utils.io import file_sha256

    if not name or "/" in name or "\\" in name or name not in shipped_sam_names():
        return None
    folder = shipped_sams_dir() / name
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    path = folder / manifest["file"]
    if not path.is_file() or file_sha256(path) != manifest["sha256"]:
        raise InputError(
            f"--sam {name}: {path} is missing or does not match the sha256 in its manifest.json "
            "(a changed or truncated file); reinstall ovdet"
        )
    return manifest["type"], path


# the image encoder's width of each registry type: how a checkpoint's type is inferred
_ENCODER_WIDTH = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
_WIDTH_KEY = "image_encoder.patch_embed.proj.weight"
_DOWNLOAD = "https://github.com/facebookresearch/segment-anything#model-checkpoints"


def build_small_sam(
    img_size: int = 256,
    *,
    embed_dim: int = 64,
    depth: int = 2,
    num_heads: int = 2,
    window_size: int = 4,
    prompt_dim: int = 64,
    decoder_mlp_dim: int = 128,
    checkpoint: str | os.PathLike | None = None,
):
    """A tiny SAM from segment_anything's own modeling classes, random unless ``checkpoint``.

    Same architecture as the released SAMs (windowed ViT image encoder with a last global
    block, prompt encoder, two-way transformer mask decoder), only small: with the defaults
    a 256-pixel input, a 16 x 16 image embedding of ``prompt_dim`` channels and 64 x 64
    low-resolution masks. For tests, benchmarks and machines without the real weights.

    Args:
        img_size: the encoder's square input side (a multiple of 16).
        embed_dim, depth, num_heads, window_size: the ViT image encoder.
        prompt_dim: the image embedding's channels = the prompt / decoder width (divisible
            by 8).
        decoder_mlp_dim: the two-way transformer's MLP width.
        checkpoint: a state dict saved from a SAM built with the same arguments; None keeps
            the random initialisation.

    Raises:
        FileNotFoundError, InputError: a missing checkpoint, or one that does not fit.
    """
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    if img_size % 16:
        raise ValueError(f"build_small_sam: img_size must be a multiple of 16, got {img_size}")
    grid = img_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size,
            patch_size=16,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4,
            out_chans=prompt_dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=window_size,
            global_attn_indexes=(depth - 1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=prompt_dim, mlp_dim=decoder_mlp_dim, num_heads=2
            ),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=prompt_dim,
        ),
    )
    sam.eval()
    if checkpoint is not None:
        state = load_sam_state_dict(checkpoint)
        _load_into(sam, state, checkpoint, "small")
    return sam


def load_sam_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a SAM checkpoint file (``weights_only``: nothing is executed).

    Raises:
        FileNotFoundError: no such file (the message says where to get one).
        InputError: a folder, or a file that is not a state dict of tensors.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"SAM checkpoint {p} not found: download one ({_DOWNLOAD}) or save "
            "build_small_sam().state_dict() with torch.save, and give its path"
        )
    if p.is_dir():
        raise InputError(f"SAM checkpoint {p} is a folder; give the .pth file itself")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors of every kind
        raise InputError(
            f"SAM checkpoint {p} could not be read as a state dict ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); give a SAM .pth file "
            "(a plain state dict)"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # {"model": state_dict}, as some trainers save
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(
            f"SAM checkpoint {p} holds a {type(state).__name__}, not a state dict of tensors; "
            "give a SAM .pth file"
        )
    return state


def infer_sam_type(state: dict[str, torch.Tensor], path: str | os.PathLike = "") -> str:
    """``vit_b``, ``vit_l``, ``vit_h`` or ``small`` from a state dict's shapes.

    Raises:
        InputError: not a SAM state dict, or a size none of the types has.
    """
    weight = state.get(_WIDTH_KEY)
    if weight is None:
        raise InputError(
            f"SAM checkpoint {path} has no {_WIDTH_KEY}: it is not a SAM state dict; give a "
            f"SAM .pth file ({_DOWNLOAD})"
        )
    width = int(weight.shape[0])
    if width in _ENCODER_WIDTH:
        return _ENCODER_WIDTH[width]
    if width == build_small_sam.__kwdefaults__["embed_dim"]:
        return "small"
    raise InputError(
        f"SAM checkpoint {path}: an image encoder of width {width} is none of "
        f"{', '.join(SAM_TYPES)} (widths 768, 1024, 1280, small: "
        f"{build_small_sam.__kwdefaults__['embed_dim']})"
    )


def _load_into(sam, state: dict[str, torch.Tensor], path, sam_type: str) -> None:
    """Strictly load ``state`` into ``sam``, or one clear error naming the file and type."""
    own = sam.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what}: {len(keys)} (e.g. {keys[0]})"
            for what, keys in (("missing", missing), ("unexpected", unexpected),
                               ("other shapes", wrong)) if keys
        )  # fmt: skip
        raise InputError(
            f"SAM checkpoint {path} does not fit SAM type {sam_type!r} ({detail}); give the "
            f"checkpoint's type ({', '.join(SAM_TYPES)}) or the path alone to infer it"
        )
    sam.load_state_dict(state, strict=True)


def build_sam(sam_type: str | None, checkpoint: str | os.PathLike | None):
    """SAM of a registry type (``vit_b``/``vit_l``/``vit_h``) or ``small`` with the weights
    of ``checkpoint``: its type inferred from its shapes when ``sam_type`` is None; random
    weights when ``checkpoint`` is None (``small`` only).

    Raises:
        InputError: an unknown type, no checkpoint for a registry type, a file that is not a
            SAM checkpoint or one that does not fit the type; FileNotFoundError: a missing
            checkpoint. Each names the file and says what to do.
    """
    from segment_anything import sam_model_registry

    if sam_type is not None and sam_type not in SAM_TYPES:
        raise InputError(f"unknown SAM type {sam_type!r}: use one of {', '.join(SAM_TYPES)}")
    if checkpoint is None:
        if sam_type == "small":
            return build_small_sam()
        raise InputError(f"SAM type {sam_type} needs a checkpoint ({_DOWNLOAD})")
    state = load_sam_state_dict(checkpoint)
    inferred = infer_sam_type(state, checkpoint)
    if sam_type is not None and inferred != sam_type:
        width = tuple(state[_WIDTH_KEY].shape)[0]
        raise InputError(
            f"SAM checkpoint {checkpoint} does not fit SAM type {sam_type!r}: its image "
            f"encoder (width {width}) is a {inferred} SAM's; give {inferred}:{checkpoint} or "
            "the path alone"
        )
    sam_type = inferred
    # random, then strictly loaded (one clear error rather than the registry's traceback)
    sam = build_small_sam() if sam_type == "small" else sam_model_registry[sam_type]()
    _load_into(sam, state, checkpoint, sam_type)
    return sam.eval()


def parse_sam_spec(spec: str) -> tuple[str | None, Path]:
    """``TYPE:CHECKPOINT``, ``CHECKPOINT`` or a shipped SAM's name (``ov-shapes-small-sam``,
    :func:`shipped_sam_names`) -> (type or None (infer), path).

    A prefix before the first ``:`` counts as a type only when it is one of ``SAM_TYPES``
    or a word that is not a drive or folder (``C:\\sam.pth`` is a path).

    Raises:
        InputError: an empty spec or checkpoint, or an unknown type.
    """
    spec = str(spec).strip()
    if not Path(spec).expanduser().exists():
        shipped = resolve_shipped_sam(spec)
        if shipped is not None:
            return shipped
    head, sep, tail = spec.partition(":")
    if sep and head in SAM_TYPES:
        sam_type, path = head, tail
    elif sep and head.isidentifier() and len(head) > 1 and "/" not in head:
        raise InputError(
            f"--sam {spec}: unknown SAM type {head!r}; use TYPE:CHECKPOINT with TYPE one of "
            f"{', '.join(SAM_TYPES)}, or the checkpoint path alone (its type is inferred)"
        )
    else:
        sam_type, path = None, spec
    if not path:
        raise InputError(
            f"--sam {spec!r}: no checkpoint; use TYPE:CHECKPOINT (e.g. vit_b:sam_vit_b.pth) "
            "or a checkpoint path"
        )
    return sam_type, Path(path).expanduser()


def sam_from_spec(spec: str) -> tuple[Any, dict[str, Any]]:
    """The SAM of a ``--sam`` spec and its identity for a run's manifest.

    Returns:
        (the ``Sam`` model on the CPU, ``{"spec", "type", "file", "sha256"}``).

    Raises:
        InputError, FileNotFoundError: an unknown type, a missing file, a checkpoint that is
            not a SAM's or does not fit the type -- one line naming the spec and the file.
    """
    from ovdet.utils.io import file_sha256

    sam_type, path = parse_sam_spec(spec)
    try:
        sam = build_sam(sam_type, path)
    except InputError as exc:
        raise InputError(f"--sam {spec}: {exc}") from exc
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--sam {spec}: {exc}") from exc
    sam_type = infer_sam_type(sam.state_dict())
    identity = {"spec": str(spec), "type": sam_type, "file": str(path), "sha256": file_sha256(path)}
    return sam.eval(), identity
