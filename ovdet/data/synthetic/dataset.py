"""Write an OV-Shapes dataset to disk (COCO instances + captions json, PNG images, split).

Layout under ``out``::

    images/train/000001.png ...      images/val/000001.png ...
    train_all.json     train images, every category annotated (oracle)
    train_base.json    same images and annotation ids, base annotations only; its
                       ``categories`` lists the base categories only
    val.json           val images, every category annotated
    captions_train.json, captions_val.json    COCO captions format
    grounding_train.json, grounding_val.json  grounding annotations (MDETR / GLIP
                       "modulated detection" format, see below)
    split.json         base / novel names, categories with attributes, seed, parameters

Category ids are ``1..N`` everywhere (see ``attributes``). Because ``train_base.json`` lists
only base categories, detectron2's contiguous ids for it are the base classes in id order,
which line up with base-class text embeddings ``embed(split["base"])``; ``val.json`` /
``train_all.json`` contiguous ids are all classes in id order (``split["categories"]``).

Annotations: ``segmentation`` is COCO RLE of the visible mask (``{"size": [h, w], "counts":
str}``, so detectron2 needs ``mask_format="bitmask"``); ``bbox`` the tight XYWH box of that
mask; ``area`` its pixel count; ``iscrowd`` 0; with ``colour_mode="random"`` also ``rgb``, the
object's random colour. Image ids are ``1..num_train`` for train and ``num_train + 1 ..`` for
val (unique across splits). Everything is a function of the seed and parameters only: the
json files are byte-identical and the images pixel-identical across runs and worker counts.
Every file is written atomically (temporary file + rename). ``split.json`` records the
generator parameters (``params``) and, with ``background="photo"``, the photos used
(``photos``: folder, file names and sha256).

Grounding files (``grounding_<split>.json``, added after the first release: roots made before
have none and ``split.json`` then does not list them; every other file is unchanged by them):
a COCO instances json with one ``images`` entry per (image, caption), MDETR's layout: the
entry carries ``caption``, ``original_img_id`` (the image's id in ``val.json`` /
``train_all.json``) and ``caption_index`` (its place among the image's captions), and every
object of the image is an annotation (all categories, novel included; ids new) with
``tokens_positive``: ``[[start, end]]``, the characters of the caption naming it
(``caption[start:end]`` is its class name as written, e.g. "red circles"), recorded while
the caption was composed; ``original_id`` is its id in the instances json.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm import tqdm

from ovdet.data.synthetic.background import PhotoBackgrounds
from ovdet.data.synthetic.config import OVShapesConfig
from ovdet.data.synthetic.scene import OVShapesGenerator
from ovdet.utils.io import atomic_write_bytes, write_json

SPLIT_FILE = "split.json"
FILES: dict[str, str] = {
    "train_all": "train_all.json",
    "train_base": "train_base.json",
    "val": "val.json",
    "captions_train": "captions_train.json",
    "captions_val": "captions_val.json",
    "grounding_train": "grounding_train.json",
    "grounding_val": "grounding_val.json",
    "images_train": "images/train",
    "images_val": "images/val",
}
_BLOCK = 32  # images per work unit


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of an (H, W) bool mask, ``counts`` as str (json-able)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _render_block(
    config: OVShapesConfig, seed: int, split: str, start: int, stop: int, image_dir: str
) -> list[dict]:
    """Generate images ``start..stop-1`` of ``split``, write their PNGs, return records."""
    gen = OVShapesGenerator(config)
    records = []
    for index in range(start, stop):
        scene = gen.scene(seed, split, index)
        file_name = f"{index + 1:06d}.png"
        buf = io.BytesIO()
        Image.fromarray(scene.image).save(buf, format="PNG", compress_level=1)
        atomic_write_bytes(Path(image_dir) / file_name, buf.getvalue())
        h, w = scene.image.shape[:2]
        objects = [
            {
                "category_id": o.category.id,
                "bbox": list(o.bbox),
                "area": float(o.area),
                "segmentation": encode_mask(o.mask),
            }
            for o in scene.objects
        ]
        if config.colour_mode == "random":
            for obj, o in zip(objects, scene.objects):
                obj["rgb"] = list(o.rgb)
        records.append(
            {
                "index": index,
                "file_name": file_name,
                "height": h,
                "width": w,
                "objects": objects,
                "captions": scene.captions,
                "spans": [[list(span) for span in c.spans] for c in scene.grounded],
            }
        )
    return records


def _generate_split(
    config: OVShapesConfig,
    seed: int,
    split: str,
    num: int,
    image_dir: Path,
    workers: int,
    bar: tqdm,
) -> Iterator[dict]:
    blocks = [(s, min(s + _BLOCK, num)) for s in range(0, num, _BLOCK)]
    if workers <= 1:
        for start, stop in blocks:
            yield from _render_block(config, seed, split, start, stop, str(image_dir))
            bar.update(stop - start)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_render_block, config, seed, split, s, e, str(image_dir)) for s, e in blocks
        ]
        for fut, (start, stop) in zip(futures, blocks):
            yield from fut.result()
            bar.update(stop - start)


def _write_coco(
    out: Path, key: str, seed: int, images: list, annotations: list, categories: list | None
) -> None:
    """Write a COCO instances (with ``categories``) or captions (``categories=None``) file."""
    info = {
        "description": f"OV-Shapes synthetic open-vocabulary dataset ({key}), made by ovdet",
        "version": "1.0",
        "seed": seed,
    }
    data = {"info": info, "licenses": [], "images": images, "annotations": annotations}
    if categories is not None:
        data["categories"] = categories
    write_json(out / FILES[key], data, compact=True)


def _add_grounding(
    images: list, annotations: list, image: dict, objects: list, record: dict
) -> None:
    """Append one image's grounding entries (one per caption) and their annotations."""
    for k, (caption, spans) in enumerate(zip(record["captions"], record["spans"])):
        entry_id = len(images) + 1
        images.append(
            {
                **image,
                "id": entry_id,
                "caption": caption,
                "original_img_id": image["id"],
                "caption_index": k,
            }
        )
        for obj, span in zip(objects, spans):
            fields = {key: v for key, v in obj.items() if key not in ("id", "image_id")}
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": entry_id,
                    **fields,
                    "tokens_positive": [span],
                    "original_id": obj["id"],
                }
            )


def generate_ov_shapes(
    out: str | os.PathLike,
    *,
    num_train: int,
    num_val: int,
    seed: int = 0,
    config: OVShapesConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Generate an OV-Shapes dataset under ``out`` (see the module docstring for the layout).

    Args:
        out: output folder (created; existing files of the same names are replaced).
        num_train: training images.
        num_val: validation images.
        seed: dataset seed; image ``i`` of a split depends only on (seed, split, i, config).
        config: generator parameters (default :class:`OVShapesConfig`).
        workers: processes generating images (results do not depend on it).
        progress: show a tqdm progress bar.

    Returns:
        Summary dict: ``{"out", "num_classes", "num_base", "num_novel", "train": {"images",
        "annotations_all", "annotations_base", "novel_objects_unannotated",
        "images_with_novel"}, "val": {"images", "annotations", "novel_annotations"}}``.
    """
    if num_train < 0 or num_val < 0:
        raise ValueError(f"OV-Shapes: num_train/num_val must be >= 0, got {num_train}, {num_val}")
    config = config or OVShapesConfig()
    # the photos are checked (and their digests taken) before anything is written
    photos = photo_record(config) if config.background == "photo" else None
    out = Path(out)
    cats = config.categories
    novel_ids = {c.id for c in cats if c.novel}
    all_cats = [c.to_coco() for c in cats]
    base_cats = [c.to_coco() for c in cats if not c.novel]

    summary: dict = {
        "out": str(out),
        "num_classes": len(cats),
        "num_base": len(base_cats),
        "num_novel": len(novel_ids),
    }
    bar = tqdm(total=num_train + num_val, desc="ov-shapes", unit="img", disable=not progress)
    first_id = {"train": 1, "val": num_train + 1}
    for split, num in (("train", num_train), ("val", num_val)):
        image_dir = out / FILES[f"images_{split}"]
        image_dir.mkdir(parents=True, exist_ok=True)
        images, anns, caps = [], [], []
        grounding_images, grounding_anns = [], []
        for rec in _generate_split(config, seed, split, num, image_dir, workers, bar):
            image_id = first_id[split] + rec["index"]
            images.append(
                {
                    "id": image_id,
                    "file_name": rec["file_name"],
                    "height": rec["height"],
                    "width": rec["width"],
                }
            )
            first_ann = len(anns) + 1
            for obj in rec["objects"]:
                anns.append({"id": len(anns) + 1, "image_id": image_id, **obj, "iscrowd": 0})
            for text in rec["captions"]:
                caps.append({"id": len(caps) + 1, "image_id": image_id, "caption": text})
            _add_grounding(grounding_images, grounding_anns, images[-1], anns[first_ann - 1 :], rec)
        novel_anns = [a for a in anns if a["category_id"] in novel_ids]
        if split == "train":
            base_anns = [a for a in anns if a["category_id"] not in novel_ids]
            _write_coco(out, "train_all", seed, images, anns, all_cats)
            _write_coco(out, "train_base", seed, images, base_anns, base_cats)
            summary["train"] = {
                "images": len(images),
                "annotations_all": len(anns),
                "annotations_base": len(base_anns),
                "novel_objects_unannotated": len(novel_anns),
                "images_with_novel": len({a["image_id"] for a in novel_anns}),
            }
        else:
            _write_coco(out, "val", seed, images, anns, all_cats)
            summary["val"] = {
                "images": len(images),
                "annotations": len(anns),
                "novel_annotations": len(novel_anns),
            }
        _write_coco(out, f"captions_{split}", seed, images, caps, None)
        _write_coco(out, f"grounding_{split}", seed, grounding_images, grounding_anns, all_cats)
    bar.close()

    attributes = {"colour": list(config.colours)} if config.colour_mode == "class" else {}
    attributes["shape"] = list(config.shapes)
    if config.textures:
        attributes["texture"] = list(dict.fromkeys(c.texture for c in cats))
    split_info = {
        "version": 1,
        "seed": seed,
        "split_seed": config.split_seed,
        "num_train": num_train,
        "num_val": num_val,
        "base": [c.name for c in cats if not c.novel],
        "novel": [c.name for c in cats if c.novel],
        "categories": all_cats,
        "attributes": attributes,
        "params": config.to_dict(),
        "files": dict(FILES),
    }
    if photos is not None:
        split_info["photos"] = photos
    write_json(out / SPLIT_FILE, split_info, indent=2, compact=True)
    return summary


def photo_record(config: OVShapesConfig) -> dict:
    """The photos of a ``background="photo"`` config: ``{"dir": folder (None: the shipped
    ones), "files": [[name, sha256], ...]}`` (what ``split.json`` records under ``photos``)."""
    photos = PhotoBackgrounds(config.photo_dir)
    return {"dir": config.photo_dir, "files": photos.listing()}


def load_split(root: str | os.PathLike) -> dict:
    """Read ``split.json`` of a generated dataset (error names the file if it is missing)."""
    path = Path(root) / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"OV-Shapes: {path} not found; generate the dataset first with "
            f"`ovdet data ov-shapes --out {Path(root)}`"
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)
