"""Class embeddings: building them with a text encoder, saving and loading (C, D) files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from ovdet.text.encoder import TextEncoder
from ovdet.text.templates import fill_template, validate_templates
from ovdet.text.vocabulary import VocabularySpec, resolve_vocabulary
from ovdet.utils.io import atomic_write, atomic_write_text

ClassList = Sequence[Union[str, Sequence[str]]]

EMBEDDING_SUFFIXES: tuple[str, ...] = (".npy", ".pt", ".pth", ".safetensors")


def normalize_classes(classes: ClassList) -> list[list[str]]:
    """``classes`` as a list of non-empty synonym lists (a plain name becomes ``[name]``)."""
    if isinstance(classes, str):
        raise TypeError(f"classes must be a list of names, not the string {classes!r}")
    out = []
    for i, entry in enumerate(classes):
        synonyms = [entry] if isinstance(entry, str) else list(entry)
        if not synonyms:
            raise ValueError(f"classes[{i}] is an empty synonym list")
        for name in synonyms:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"classes[{i}] contains an empty or non-string name: {name!r}")
        out.append([name.strip() for name in synonyms])
    if not out:
        raise ValueError("classes is empty: give at least one class name")
    return out


def build_class_embeddings(
    encoder: TextEncoder,
    classes: ClassList,
    templates: Sequence[str],
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """Zero-shot classifier weights: t_c = normalise(mean_k normalise(TextEnc(prompt_k(c)))).

    The mean runs over all templates x synonyms of class c (docs/methods.md#clip-basics). All
    prompts of all classes are encoded together in batches of ``batch_size``.

    Args:
        encoder: the text encoder.
        classes: C entries, each a name or a list of synonyms.
        templates: format strings with one ``"{}"`` each (see ``get_templates``).
        batch_size: prompts per forward pass.

    Returns:
        Tensor (C, D) float32 on CPU, L2-normalised rows.

    Raises:
        InputError: names the encoder cannot read (e.g. words a model bundle's pruned text
            tower lacks; ``TextEncoder.check_texts``), naming them.
    """
    synonym_lists = normalize_classes(classes)
    templates = validate_templates(templates)
    prompts: list[str] = []
    owner: list[int] = []
    prompt_names: list[str] = []
    for c, synonyms in enumerate(synonym_lists):
        for name in synonyms:
            for template in templates:
                prompts.append(fill_template(template, name))
                owner.append(c)
                prompt_names.append(name)
    if isinstance(encoder, TextEncoder):
        encoder.check_texts(prompts, prompt_names)  # an error names the classes, not prompts
    prompt_embeddings = encoder.encode(prompts, batch_size=batch_size)  # (P, D), normalised
    sums = torch.zeros(len(synonym_lists), prompt_embeddings.shape[1])
    sums.index_add_(0, torch.tensor(owner), prompt_embeddings)
    # the mean's 1/count does not change the direction, so normalising the sum is the same
    return F.normalize(sums, dim=-1)


def names_path(path: str | os.PathLike) -> Path:
    """Sidecar file listing the row names of an embedding file: ``x.npy -> x.names.txt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.names.txt")


def save_class_embeddings(
    path: str | os.PathLike,
    embeddings: torch.Tensor,
    names: Sequence[str] | None = None,
) -> Path:
    """Writes (C, D) embeddings as float32 ``.npy``, ``.pt``/``.pth`` or ``.safetensors``.

    ``.safetensors`` stores the tensor under the key ``"embeddings"``. With ``names``, a
    sidecar ``<stem>.names.txt`` (one name per line, row order) is written too. Both files
    are written atomically (temporary file + rename).

    Args:
        path: output file; the suffix picks the format.
        embeddings: Tensor (C, D).
        names: C row names.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_SUFFIXES:
        raise ValueError(f"cannot write {path}: the suffix must be one of {EMBEDDING_SUFFIXES}")
    embeddings = torch.as_tensor(embeddings).detach().to("cpu", torch.float32).contiguous()
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (C, D), got shape {tuple(embeddings.shape)}")
    if names is not None:
        names = list(names)
        if len(names) != embeddings.shape[0]:
            raise ValueError(
                f"{len(names)} names for {embeddings.shape[0]} embedding rows (writing {path})"
            )
        bad = [name for name in names if not name.strip() or "\n" in name]
        if bad:
            raise ValueError(f"names must be non-empty single lines, got {bad}")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, embeddings.numpy())
        elif suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({"embeddings": embeddings}, tmp)
        else:
            torch.save(embeddings, tmp)

    atomic_write(path, write)
    if names is not None:
        text = "".join(f"{name}\n" for name in names)
        atomic_write_text(names_path(path), text)
    return path


def _read_matrix(path: Path) -> torch.Tensor:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return torch.from_numpy(np.load(path, allow_pickle=False))
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return _pick_tensor(load_file(str(path)), path)
    if suffix in (".pt", ".pth"):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(obj, torch.Tensor):
            return obj
        if isinstance(obj, np.ndarray):
            return torch.from_numpy(obj)
        if isinstance(obj, dict):
            return _pick_tensor(obj, path)
        raise ValueError(f"{path} holds a {type(obj).__name__}, expected a (C, D) tensor")
    raise ValueError(
        f"cannot read class embeddings from {path}: the suffix must be one of {EMBEDDING_SUFFIXES}"
    )


def _pick_tensor(tensors: dict, path: Path) -> torch.Tensor:
    if "embeddings" in tensors:
        return tensors["embeddings"]
    candidates = [key for key, value in tensors.items() if isinstance(value, torch.Tensor)]
    if len(candidates) == 1:
        return tensors[candidates[0]]
    raise ValueError(
        f"{path} holds the keys {sorted(map(str, tensors))}: store the (C, D) matrix under "
        "'embeddings' (or as the only tensor)"
    )


def load_class_embeddings(
    path: str | os.PathLike,
    *,
    vocabulary: VocabularySpec | None = None,
    select: VocabularySpec | None = None,
    expected_dim: int | None = None,
) -> torch.Tensor:
    """Reads a (C, D) class-embedding file, optionally picking rows by class name.

    Args:
        path: ``.npy``, ``.pt``/``.pth`` (tensor, or dict with ``"embeddings"``) or
            ``.safetensors``; row i = class i (e.g. category id order). fp16 is fine.
        vocabulary: names of the file's rows: a spec for :func:`resolve_vocabulary`
            (``"coco"``, ``"lvis"``, a names file, a list). Its length must equal C.
            Default: the file's ``<stem>.names.txt`` sidecar when it exists (written by
            :func:`save_class_embeddings`), else the rows are unnamed.
        select: names (or a vocabulary spec such as ``"ov-coco-base"``) of the rows to
            return, in that order; needs ``vocabulary``. Raw LVIS names (``"aerosol_can"``)
            also match their readable form.
        expected_dim: if given, D must equal it.

    Returns:
        Tensor (C, D) -- or (len(select), D) -- float32, L2-normalised rows.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class embedding file {path} not found")
    matrix = _read_matrix(path)
    if matrix.ndim != 2:
        raise ValueError(
            f"class embedding file {path} has shape {tuple(matrix.shape)}; expected a 2-D "
            "(num_classes, dim) matrix"
        )
    if not matrix.is_floating_point():
        raise ValueError(f"class embedding file {path} has dtype {matrix.dtype}, expected float")
    num_rows, dim = matrix.shape
    if expected_dim is not None and dim != expected_dim:
        raise ValueError(
            f"embedding file {path} has dim {dim} but the model expects {expected_dim}"
        )
    matrix = F.normalize(matrix.to(torch.float32), dim=-1)
    if vocabulary is None and names_path(path).is_file():
        vocabulary = str(names_path(path))
    if vocabulary is None:
        if select is not None:
            raise ValueError(
                f"select= needs vocabulary= (the names of the rows of {path}), e.g. "
                f"vocabulary='coco' or vocabulary='{names_path(path)}'"
            )
        return matrix
    names = resolve_vocabulary(vocabulary)
    if len(names) != num_rows:
        raise ValueError(
            f"class embedding file {path} has {num_rows} rows but the vocabulary has "
            f"{len(names)} names; row i must be the embedding of name i"
        )
    if select is None:
        return matrix
    wanted = resolve_vocabulary(select)
    row_of = {name: i for i, name in enumerate(names)}
    rows, missing = [], []
    for name in wanted:
        row = row_of.get(name, row_of.get(name.replace("_", " ")))
        if row is None:
            missing.append(name)
        else:
            rows.append(row)
    if missing:
        raise ValueError(
            f"{len(missing)} selected names are not in the vocabulary of {path}: {missing}"
        )
    return matrix[rows]
