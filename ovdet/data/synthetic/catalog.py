"""OV-Shapes roots in detectron2: registration, class names and files (for configs and tools).

The ``configs/ov_shapes/*.py`` files call these through ``LazyCall`` so that nothing is read
or registered until a config is instantiated:

* :func:`register_ov_shapes` registers the three splits of a root;
* :func:`ov_shapes_dataset` registers a dataset root (idempotent) and returns the name of
  one of its splits, e.g. ``"ov_shapes_train_base"``;
* :func:`ov_shapes_class_names` reads base / novel / all class names from ``split.json``;
* class text embeddings of those names are read with
  ``ovdet.text.load_class_embeddings(path, select=names)`` (rows named by the file's sidecar).

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

from ovdet.data.synthetic.dataset import FILES, SPLIT_FILE, load_split
from ovdet.utils.io import write_json

__all__ = [
    "DEFAULT_PREFIX",
    "default_ov_shapes_root",
    "ov_shapes_class_names",
    "ov_shapes_dataset",
    "prepare_external_dataset",
    "register_ov_shapes",
    "split_files",
]

DEFAULT_PREFIX = "ov_shapes"
_SPLITS = ("train_base", "train_all", "val")
# grounding datasets (roots generated with grounding files): suffix -> (files key, drop novel)
_GROUNDING = {
    "grounding_train_base": ("grounding_train", True),
    "grounding_train_all": ("grounding_train", False),
    "grounding_val": ("grounding_val", False),
}
_WHICH = ("base", "novel", "all")


def default_ov_shapes_root() -> str:
    """``$OVDET_OV_SHAPES``, else ``$OVDET_DATASETS/ov_shapes`` (``./datasets/ov_shapes``)."""
    root = os.environ.get("OVDET_OV_SHAPES")
    if root:
        return str(Path(root).expanduser().absolute())
    from ovdet.data import datasets_root

    return str(datasets_root() / "ov_shapes")


def register_ov_shapes(
    root: str | os.PathLike, prefix: str = "ov_shapes", *, replace: bool = False
) -> list[str]:
    """Register ``{prefix}_train_base``, ``{prefix}_train_all`` and ``{prefix}_val``.

    Uses :func:`ovdet.data.datasets.register_ov_dataset` (evaluator type ``"ov_coco"``), with
    ``thing_classes`` / ``thing_dataset_id_to_contiguous_id`` declared from ``split.json``
    (so nothing but ``split.json`` is read now):

    * ``_train_base``: base classes only (contiguous ids = base classes in id order; its
      ``novel_classes`` is empty since its json has no novel category);
    * ``_train_all`` and ``_val``: all classes, ``novel_classes`` = the novel split.

    Extra metadata of each: ``captions_json`` (the split's captions file), ``split_json``,
    ``mask_format`` ("bitmask": segmentations are RLE), ``ov_shapes_novel`` (novel names).

    A root with grounding files (``split.json`` lists ``grounding_train``) also gets
    ``{prefix}_grounding_train_base`` (the grounding json without novel boxes: their objects
    stay named in the captions), ``{prefix}_grounding_train_all`` and
    ``{prefix}_grounding_val`` (:func:`ovdet.data.grounding.register_grounding_dataset`; all
    classes in ``thing_classes``).

    Args:
        root: folder written by ``ovdet data ov-shapes --out``.
        prefix: dataset name prefix.
        replace: re-register names that already exist with different paths.

    Returns:
        The registered dataset names.
    """
    from ovdet.data.datasets import register_ov_dataset

    root = Path(root).resolve()
    split = load_split(root)
    cats = sorted(split["categories"], key=lambda c: c["id"])
    novel = [c["name"] for c in cats if c["name"] in set(split["novel"])]
    base_cats = [c for c in cats if c["name"] not in set(novel)]
    files = split.get("files", FILES)
    specs = (
        ("train_base", files["train_base"], "images_train", "captions_train", base_cats, []),
        ("train_all", files["train_all"], "images_train", "captions_train", cats, novel),
        ("val", files["val"], "images_val", "captions_val", cats, novel),
    )
    names = []
    for suffix, json_name, images_key, captions_key, split_cats, split_novel in specs:
        name = f"{prefix}_{suffix}"
        register_ov_dataset(
            name,
            root / json_name,
            root / files[images_key],
            novel=split_novel,
            evaluator_type="ov_coco",
            extra_metadata={
                "thing_classes": [c["name"] for c in split_cats],
                "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(split_cats)},
                "captions_json": str(root / files[captions_key]),
                "split_json": str(root / SPLIT_FILE),
                "mask_format": "bitmask",
                "ov_shapes_novel": list(novel),
            },
            replace=replace,
        )
        names.append(name)
    if "grounding_train" in files and "grounding_val" in files:
        from ovdet.data.grounding import register_grounding_dataset

        for suffix, (key, drop_novel) in _GROUNDING.items():
            images_key = "images_train" if key == "grounding_train" else "images_val"
            name = f"{prefix}_{suffix}"
            register_grounding_dataset(
                name,
                root / files[key],
                root / files[images_key],
                novel=novel,
                drop_novel=drop_novel,
                extra_metadata={
                    "thing_classes": [c["name"] for c in cats],
                    "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
                    "split_json": str(root / SPLIT_FILE),
                    "mask_format": "bitmask",
                    "ov_shapes_novel": list(novel),
                },
                replace=replace,
            )
            names.append(name)
    return names


def ov_shapes_dataset(root: str | os.PathLike, split: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Register the datasets of ``root`` under ``prefix`` and return ``"<prefix>_<split>"``.

    Registration reads ``split.json`` only; registering the same root again is a no-op, a
    different root under the same prefix replaces the earlier registration.

    Args:
        root: dataset folder holding ``split.json``.
        split: ``"train_base"``, ``"train_all"``, ``"val"``, or a grounding split:
            ``"grounding_train_base"``, ``"grounding_train_all"``, ``"grounding_val"``.
        prefix: dataset name prefix.

    Returns:
        The detectron2 dataset name of ``split``.

    Raises:
        FileNotFoundError: a grounding split of a root generated without grounding files.
    """
    known = (*_SPLITS, *_GROUNDING)
    if split not in known:
        raise ValueError(f"ov_shapes_dataset: split must be one of {known}, got {split!r}")
    names = register_ov_shapes(root, prefix, replace=True)
    name = f"{prefix}_{split}"
    if name not in names:
        raise FileNotFoundError(
            f"OV-Shapes root {Path(root)} has no grounding annotations ({SPLIT_FILE} lists no "
            "grounding_train / grounding_val files: it was generated before they existed); "
            "generate it again with `ovdet data ov-shapes` (same seed and parameters: the "
            "other files come out identical) to train on captions"
        )
    return name


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
    write_json(out / "train_base.json", base_data, newline=False)
    captions_val = _first(data_dir, ("captions_val.json",))
    if captions_json is None or captions_val is None:
        empty = out / "captions_empty.json"
        write_json(empty, {"images": [], "annotations": []}, newline=False)
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
    write_json(out / SPLIT_FILE, split, indent=2)
    return split
