"""OV-Shapes data for the benchmark and its configs: registration, class names, embeddings.

The ``configs/ov_shapes/*.py`` files call these through ``LazyCall`` so that nothing is read
or registered until a config is instantiated:

* :func:`ov_shapes_dataset` registers a dataset root (idempotent) and returns the name of
  one of its splits, e.g. ``"ov_shapes_train_base"``;
* :func:`ov_shapes_class_names` reads base / novel / all class names from ``split.json``;
* :func:`ov_shapes_class_embeddings` picks rows of a class-embedding file by name.

A dataset root is a folder with ``split.json`` as written by
:func:`ovdet.data.synthetic.generate_ov_shapes`; its ``files`` entry may hold absolute paths,
which is how :func:`prepare_external_dataset` points a root at an external COCO-format
dataset without copying it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ovdet.data.synthetic.dataset import FILES, SPLIT_FILE, load_split

__all__ = [
    "DEFAULT_PREFIX",
    "default_ov_shapes_root",
    "ov_shapes_class_embeddings",
    "ov_shapes_class_names",
    "ov_shapes_dataset",
    "prepare_external_dataset",
    "split_files",
]

DEFAULT_PREFIX = "ov_shapes"
_SPLITS = ("train_base", "train_all", "val")
_WHICH = ("base", "novel", "all")


def default_ov_shapes_root() -> str:
    """``$OVDET_OV_SHAPES``, else ``$OVDET_DATASETS/ov_shapes`` (``./datasets/ov_shapes``)."""
    root = os.environ.get("OVDET_OV_SHAPES")
    if root:
        return str(Path(root).expanduser().absolute())
    from ovdet.data import datasets_root

    return str(datasets_root() / "ov_shapes")


def ov_shapes_dataset(root: str | os.PathLike, split: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Register the datasets of ``root`` under ``prefix`` and return ``"<prefix>_<split>"``.

    Registration reads ``split.json`` only; registering the same root again is a no-op, a
    different root under the same prefix replaces the earlier registration.

    Args:
        root: dataset folder holding ``split.json``.
        split: ``"train_base"``, ``"train_all"`` or ``"val"``.
        prefix: dataset name prefix.

    Returns:
        The detectron2 dataset name of ``split``.
    """
    if split not in _SPLITS:
        raise ValueError(f"ov_shapes_dataset: split must be one of {_SPLITS}, got {split!r}")
    from ovdet.data.synthetic import register_ov_shapes

    names = register_ov_shapes(root, prefix, replace=True)
    return names[_SPLITS.index(split)]


def ov_shapes_class_names(root: str | os.PathLike, which: str = "all") -> list[str]:
    """Class names of a dataset root, from its ``split.json``.

    Args:
        root: dataset folder holding ``split.json``.
        which: ``"base"``, ``"novel"`` or ``"all"`` (every category in id order, which is the
            contiguous-id order of the ``val`` / ``train_all`` datasets).

    Returns:
        The names.
    """
    if which not in _WHICH:
        raise ValueError(f"ov_shapes_class_names: which must be one of {_WHICH}, got {which!r}")
    split = load_split(root)
    if which == "all":
        return [c["name"] for c in sorted(split["categories"], key=lambda c: c["id"])]
    return list(split[which])


def ov_shapes_class_embeddings(
    root: str | os.PathLike, path: str | os.PathLike, which: str = "all"
) -> torch.Tensor:
    """Rows of a class-embedding file for the base / novel / all classes of a dataset root.

    Args:
        root: dataset folder holding ``split.json``.
        path: embedding file with a ``<stem>.names.txt`` sidecar naming its rows (as written by
            :func:`ovdet.text.save_class_embeddings`).
        which: see :func:`ov_shapes_class_names`.

    Returns:
        Tensor (C, D) float32, L2-normalised rows, in the order of
        ``ov_shapes_class_names(root, which)``.
    """
    from ovdet.text import load_class_embeddings, names_path

    sidecar = names_path(path)
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"class embedding file {path} has no names sidecar {sidecar}; write it with "
            "ovdet.text.save_class_embeddings(path, embeddings, names)"
        )
    return load_class_embeddings(
        path, vocabulary=str(sidecar), select=ov_shapes_class_names(root, which)
    )


def split_files(root: str | os.PathLike) -> dict[str, Path]:
    """Absolute paths of a dataset root's files (``FILES`` keys), from its ``split.json``."""
    root = Path(root).resolve()
    files = load_split(root).get("files", FILES)
    return {key: root / value for key, value in files.items()}


# --------------------------------------------------------------------------------------------
# External COCO-format datasets


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid json ({e})") from e


def _first(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _image_root(data_dir: Path, split: str, json_file: Path, data: dict) -> Path:
    images = data.get("images") or []
    candidates = [data_dir / "images" / split, data_dir / "images", data_dir]
    if not images:
        return candidates[0]
    probe = images[0].get("file_name")
    if not probe:
        raise ValueError(f"{json_file}: images[0] has no 'file_name'")
    for folder in candidates:
        if (folder / probe).is_file():
            return folder
    tried = ", ".join(str(c / probe) for c in candidates)
    raise FileNotFoundError(
        f"{json_file}: image {probe!r} (images[0].file_name) not found; tried {tried}"
    )


def prepare_external_dataset(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    novel: Sequence[str],
    *,
    captions: str | os.PathLike | None = None,
) -> dict:
    """Make a benchmark dataset root for an external COCO-format dataset (no copying).

    Expected under ``data_dir``: ``train_all.json`` or ``train.json`` (every category
    annotated), ``val.json``, images under ``images/train`` / ``images/val`` (or ``images/``, or
    ``data_dir`` itself), and captions in ``captions_train.json`` (or ``captions``). ``out``
    receives ``train_base.json`` (the training json without novel annotations and categories)
    and ``split.json`` whose ``files`` point at the external files by absolute path, so
    :func:`ovdet.data.synthetic.register_ov_shapes` and the configs use it like a generated
    root.

    Args:
        data_dir: the external dataset folder.
        out: folder for the derived files.
        novel: novel class names (categories of the jsons).
        captions: COCO captions json of the training images (default
            ``data_dir/captions_train.json`` when present).

    Returns:
        The ``split.json`` dict written.
    """
    data_dir = Path(data_dir).resolve()
    out = Path(out)
    train_json = _first(data_dir, ("train_all.json", "train.json"))
    if train_json is None:
        raise FileNotFoundError(
            f"--data {data_dir}: no training json (expected train_all.json or train.json with "
            "every category annotated)"
        )
    val_json = _first(data_dir, ("val.json",))
    if val_json is None:
        raise FileNotFoundError(f"--data {data_dir}: no val.json")
    captions_json = (
        Path(captions).resolve() if captions else _first(data_dir, ("captions_train.json",))
    )
    if captions is not None and not Path(captions).is_file():
        raise FileNotFoundError(f"--captions {captions} not found")
    train = _read_json(train_json, "training json")
    val = _read_json(val_json, "validation json")
    for path, data in ((train_json, train), (val_json, val)):
        for key in ("images", "annotations", "categories"):
            if key not in data:
                raise ValueError(f"{path}: missing top-level field {key!r}")
    cats = sorted(
        ({"id": int(c["id"]), "name": str(c["name"])} for c in val["categories"]),
        key=lambda c: c["id"],
    )
    train_cats = sorted((int(c["id"]), str(c["name"])) for c in train["categories"])
    if train_cats != [(c["id"], c["name"]) for c in cats]:
        raise ValueError(
            f"{train_json} and {val_json} list different categories (ids and names must match)"
        )
    names = [c["name"] for c in cats]
    novel = list(dict.fromkeys(novel))
    unknown = [n for n in novel if n not in names]
    if unknown:
        raise ValueError(
            f"--novel names {unknown} are not categories of {val_json}; known: {names}"
        )
    if not novel:
        raise ValueError("--novel: give at least one novel class name")
    if len(novel) == len(names):
        raise ValueError("--novel lists every category: at least one base class is needed")
    novel_ids = {c["id"] for c in cats if c["name"] in set(novel)}
    out.mkdir(parents=True, exist_ok=True)
    base_data = dict(train)
    base_data["annotations"] = [
        a for a in train["annotations"] if int(a["category_id"]) not in novel_ids
    ]
    base_data["categories"] = [c for c in train["categories"] if int(c["id"]) not in novel_ids]
    (out / "train_base.json").write_text(json.dumps(base_data), encoding="utf-8")
    captions_val = _first(data_dir, ("captions_val.json",))
    if captions_json is None or captions_val is None:
        empty = out / "captions_empty.json"
        empty.write_text(json.dumps({"images": [], "annotations": []}), encoding="utf-8")
    files = {
        "train_all": str(train_json),
        "train_base": "train_base.json",
        "val": str(val_json),
        "captions_train": str(captions_json) if captions_json else "captions_empty.json",
        "captions_val": str(captions_val) if captions_val else "captions_empty.json",
        "images_train": str(_image_root(data_dir, "train", train_json, train)),
        "images_val": str(_image_root(data_dir, "val", val_json, val)),
    }
    split = {
        "version": 1,
        "source": str(data_dir),
        "base": [n for n in names if n not in set(novel)],
        "novel": [n for n in names if n in set(novel)],
        "categories": cats,
        "has_captions": captions_json is not None,
        "files": files,
    }
    (out / SPLIT_FILE).write_text(json.dumps(split, indent=2) + "\n", encoding="utf-8")
    return split
