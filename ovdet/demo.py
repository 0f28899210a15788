"""The embedded demo: text-prompted open-vocabulary detection on fresh OV-Shapes images.

:func:`run_demo` generates a few OV-Shapes validation images with a seed the shipped models
never saw, loads a named model through the registry (:mod:`ovdet.model_zoo`; by default the
best shipped one, ``DEFAULT_MODEL``: a small CLIP teacher's text tower and an RKD-ensemble
detector in ``ovdet/assets/models/``, made by ``ovdet bench ov-shapes --export-demo``; nothing
is trained here), detects a vocabulary that includes the novel classes -- classes the detector
never saw a box of -- and writes::

    OUT/images/val/*.png          the generated images
    OUT/vis/*.png                 ground truth | detections, side by side and enlarged
                                  (novel classes marked "*" with a dashed outline)
    OUT/results.json              detections, COCO results format (XYWH boxes)
    OUT/ground_truth.json         the images' COCO instances ground truth
    OUT/metrics.json              box AP50 over all / base / novel classes

A vocabulary of other names (``vocabulary=["red circle", "blue star"]``) is encoded by the
teacher's text tower; classes of the images left out of the vocabulary count as missed.
The command line is ``ovdet demo`` (:mod:`ovdet.cli.demo`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from detectron2.data import transforms as T
from PIL import Image

from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes
from ovdet.evaluation import evaluate_coco_results
from ovdet.evaluation.results import detections_to_coco_results
from ovdet.model_zoo import LoadedModel, get_model, read_manifest
from ovdet.predictor import OVPredictor
from ovdet.utils.device import resolve_device
from ovdet.utils.errors import InputError
from ovdet.utils.image import load_image
from ovdet.utils.io import write_json
from ovdet.utils.visualize import compose_panels, draw_detections

__all__ = [
    "add_vocabulary_categories",
    "build_predictor",
    "draw_comparison",
    "make_images",
    "run_demo",
    "score_results",
    "summarise_image",
]


def make_images(
    out: Path, *, num_images: int, seed: int, generator: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Generate ``num_images`` OV-Shapes validation images into ``out/images/val``.

    Only what the demo uses is kept: the training split and ``val.json`` are removed (the
    ground truth is returned, and written later as ``ground_truth.json``).

    Args:
        out: output folder.
        num_images: images to generate.
        seed: generator seed (the shipped models were trained on seed 0).
        generator: the generator parameters the assets were trained with (their manifest's
            ``"generator"``); None or empty for the defaults.

    Returns:
        The COCO instances ground truth of the images (``images``, ``annotations``,
        ``categories``; boxes XYWH).
    """
    config = OVShapesConfig.from_dict(dict(generator)) if generator else OVShapesConfig()
    generate_ov_shapes(
        out, num_train=0, num_val=num_images, seed=seed, config=config, progress=False
    )
    gt = json.loads((out / "val.json").read_text(encoding="utf-8"))
    for name in ("val.json", "train_all.json", "train_base.json", "captions_train.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "images" / "train", ignore_errors=True)
    return gt


def build_predictor(
    loaded: LoadedModel,
    vocabulary: Sequence[str] | None,
    *,
    device: str,
    score_thresh: float,
    sam: Any = None,
) -> tuple[OVPredictor, list[str]]:
    """The predictor over a loaded bundle's detector, with ``vocabulary`` set.

    The names are encoded by the teacher's text tower (the model caches the embeddings).

    Args:
        loaded: the loaded model (``get_model(...).load()``).
        vocabulary: class names to detect; None or empty for every class of the model.
        device: a resolved device ("cpu", "cuda", ...).
        score_thresh: lowest score returned.
        sam: a :class:`~ovdet.modeling.sam.BoxPromptedSAM` whose masks replace the mask
            head's (None: the model's own masks).

    Returns:
        ``(predictor, vocabulary)``.
    """
    vocab = list(vocabulary) if vocabulary else list(loaded.spec.classes or [])
    size = loaded.spec.image_size
    predictor = OVPredictor(
        loaded.model,
        device=device,
        score_thresh=score_thresh,
        resize=loaded.resize or T.ResizeShortestEdge([size, size], max_size=size),
        sam=sam,
    )
    predictor.spec = loaded.spec
    predictor.set_vocabulary(vocab)
    return predictor, vocab


def add_vocabulary_categories(
    gt: Mapping[str, Any], vocabulary: Iterable[str]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Give every vocabulary name a category of the ground truth.

    A name the images do not annotate gets a new category id (after the largest), so that
    its detections are scored as false positives of a class without ground truth.

    Returns:
        ``(ground truth with the added categories, {name: category id})``.
    """
    name_to_id = {c["name"]: int(c["id"]) for c in gt["categories"]}
    extra = []
    for name in vocabulary:
        if name not in name_to_id:
            name_to_id[name] = max(name_to_id.values()) + 1
            extra.append({"id": name_to_id[name], "name": name})
    return {**gt, "categories": list(gt["categories"]) + extra}, name_to_id


def _annotation_masks(
    annotations: Sequence[Mapping[str, Any]], height: int, width: int
) -> np.ndarray | None:
    """(N, H, W) bool masks of COCO annotations (RLE or polygons); None if one has none."""
    from pycocotools import mask as mask_util

    masks = []
    for ann in annotations:
        seg = ann.get("segmentation")
        if not seg:
            return None
        if isinstance(seg, list):  # polygons
            seg = mask_util.merge(mask_util.frPyObjects(seg, height, width))
        elif isinstance(seg.get("counts"), list):  # uncompressed RLE
            seg = mask_util.frPyObjects(seg, height, width)
        masks.append(mask_util.decode(seg).astype(bool))
    return np.stack(masks) if masks else np.zeros((0, height, width), dtype=bool)


def draw_comparison(
    rgb: np.ndarray,
    annotations: Sequence[Mapping[str, Any]],
    pred: Mapping[str, Any],
    *,
    categories: Mapping[int, str],
    vocabulary: Sequence[str],
    novel: Iterable[str],
    show_thresh: float,
) -> Image.Image:
    """The ground truth and the detections of one image, side by side, enlarged.

    A class has the same colour in both panels (its index in ``vocabulary``); novel classes
    are drawn dashed with a ``*``. When the model predicts masks, both panels also show the
    masks' outlines (not filled: an OV-Shapes class is a colour, a fill would repaint it).

    Args:
        rgb: (H, W, 3) uint8 image.
        annotations: its COCO ground-truth annotations (``bbox`` XYWH, ``category_id``).
        pred: its predictions (:meth:`OVPredictor.predict`; ``labels`` index ``vocabulary``).
        categories: ``{category id: name}`` of the ground truth.
        vocabulary: the predictor's vocabulary.
        novel: names of the novel classes.
        show_thresh: lowest score drawn.

    Returns:
        RGB image: two panels titled "ground truth" and "prediction (score >= t)".
    """
    novel = set(novel)
    index = {name: i for i, name in enumerate(vocabulary)}
    gt_names = [categories[int(a["category_id"])] for a in annotations]
    gt_boxes = np.array(
        [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations)], dtype=np.float64
    ).reshape(-1, 4)
    # a class outside the vocabulary still gets a colour of its own
    gt_labels = [
        index.get(n, len(vocabulary) + int(a["category_id"])) for n, a in zip(gt_names, annotations)
    ]
    with_masks = "masks" in pred
    truth = draw_detections(
        rgb,
        gt_boxes,
        gt_labels,
        gt_names,
        masks=_annotation_masks(annotations, *rgb.shape[:2]) if with_masks else None,
        novel=[n in novel for n in gt_names],
        mask_alpha=0.0,
    )
    keep = pred["scores"] >= show_thresh
    names = [n for n, k in zip(pred["class_names"], keep) if k]
    detected = draw_detections(
        rgb,
        pred["boxes"][keep],
        pred["labels"][keep],
        names,
        pred["scores"][keep],
        masks=pred["masks"][keep] if with_masks else None,
        novel=[n in novel for n in names],
        mask_alpha=0.0,
    )
    return compose_panels(
        [truth, detected],
        ["ground truth  (*novel: dashed)", f"prediction (score >= {show_thresh:.2f})"],
    )


def summarise_image(
    path: Path, objects: int, pred: Mapping[str, Any], *, novel: Iterable[str], show_thresh: float
) -> dict[str, Any]:
    """One image's entry of the summary: ``file``, ``objects`` (ground-truth count) and
    ``detections`` (score >= ``show_thresh``: ``name``, ``score``, ``box`` XYXY, ``novel``)."""
    novel = set(novel)
    keep = pred["scores"] >= show_thresh
    return {
        "file": str(path),
        "objects": objects,
        "detections": [
            {
                "name": n,
                "score": round(float(s), 4),
                "box": [round(float(v), 1) for v in b],
                "novel": n in novel,
            }
            for n, s, b, k in zip(pred["class_names"], pred["scores"], pred["boxes"], keep)
            if k
        ],
    }


def score_results(
    gt_path: Path, gt: Mapping[str, Any], results: list[dict[str, Any]], novel: Iterable[str]
) -> dict[str, float]:
    """Box AP (COCO, percent) over all / base / novel classes; novel classes without a
    ground-truth category are left out of the novel average."""
    names = {c["name"] for c in gt["categories"]}
    gt_novel = [n for n in novel if n in names]
    # the results' ids are the ground truth's own (one program wrote both): no join to verify
    return evaluate_coco_results(gt_path, results, novel=gt_novel, trust_ids=True).get("bbox", {})


def run_demo(
    out: str | Path,
    *,
    num_images: int = 6,
    seed: int = 1,
    vocabulary: list[str] | None = None,
    device: str = "auto",
    score_thresh: float = 0.05,
    show_thresh: float = 0.3,
    model: str | Path | None = None,
    sam: str | None = None,
) -> dict[str, Any]:
    """Run the demo (see the module docstring).

    Args:
        out: output folder.
        num_images: generated images.
        seed: generator seed of the images (the shipped models were trained on seed 0).
        vocabulary: class names to detect (default: every OV-Shapes class, base + novel).
        device: "auto", "cpu" or "cuda".
        score_thresh: lowest score kept in ``results.json`` (and scored by AP).
        show_thresh: lowest score drawn and listed in the summary.
        model: an OV-Shapes bundle: a name (``ovdet models``) or a bundle folder; default
            the best shipped model (``ovdet.model_zoo.DEFAULT_MODEL``).
        sam: draw masks from SAM prompted with the detections' boxes: a ``--sam`` spec
            (``ov-shapes-small-sam``, ``TYPE:CHECKPOINT``; docs/sam.md).

    Returns:
        ``{"metrics": {"AP50", "AP50_base", "AP50_novel", ...}, "images": [per-image dicts:
        file, objects, detections (name, score, box XYXY, novel)], "vocabulary", "novel",
        "seed", "model": {"name", "description", "path", "metrics" (measured on its training
        run's val split, as shipped)}, "sam" (None, or the SAM's ``{"spec", "type", "file",
        "sha256"}``), "outputs": {name: path}, "time_s"}``.

    Raises:
        ValueError: ``num_images`` < 1, a model that is not an OV-Shapes bundle, or a bundle
            that fails its checksums.
    """
    start = time.perf_counter()
    if num_images < 1:
        raise ValueError(f"--num-images must be >= 1, got {num_images}")
    out = Path(out)
    device = resolve_device(device)
    spec = get_model(model)
    if spec.kind != "bundle" or not spec.classes:
        raise InputError(
            f"the demo runs OV-Shapes bundles (`ovdet models` lists them); {spec.name} is a "
            f"{spec.kind} ({spec.path}): try it with `ovdet detect --model {spec.name}`"
        )
    sam_model, sam_identity = None, None
    if sam is not None:  # checked (type, file, fit) before the model is built
        from ovdet.modeling.sam import BoxPromptedSAM, sam_from_spec

        sam_model, sam_identity = sam_from_spec(sam)
        sam_model = BoxPromptedSAM(sam_model, device=device)
    loaded = spec.load(device=device)
    novel = set(spec.novel)

    gt = make_images(
        out, num_images=num_images, seed=seed, generator=read_manifest(spec.path).get("generator")
    )
    predictor, vocab = build_predictor(
        loaded, vocabulary, device=device, score_thresh=score_thresh, sam=sam_model
    )
    gt, name_to_id = add_vocabulary_categories(gt, vocab)
    category_ids = [name_to_id[name] for name in vocab]  # vocabulary row -> category id
    gt_path = out / "ground_truth.json"
    write_json(gt_path, gt, newline=False)

    vis_dir = out / "vis"
    vis_dir.mkdir(parents=True, exist_ok=True)
    categories = {int(c["id"]): c["name"] for c in gt["categories"]}
    annotations: dict[int, list[dict[str, Any]]] = {}
    for ann in gt["annotations"]:
        annotations.setdefault(ann["image_id"], []).append(ann)
    results, per_image = [], []
    for img in gt["images"]:
        path = out / "images" / "val" / img["file_name"]
        rgb = load_image(path)
        pred = predictor.predict(rgb)
        anns = annotations.get(img["id"], [])
        results += detections_to_coco_results(
            int(img["id"]), pred["boxes"], pred["scores"], pred["labels"], category_ids
        )
        draw_comparison(
            rgb,
            anns,
            pred,
            categories=categories,
            vocabulary=vocab,
            novel=novel,
            show_thresh=show_thresh,
        ).save(vis_dir / img["file_name"])
        per_image.append(
            summarise_image(path, len(anns), pred, novel=novel, show_thresh=show_thresh)
        )
    results_path = out / "results.json"
    write_json(results_path, results, newline=False)

    metrics = score_results(gt_path, gt, results, spec.novel)
    metrics_path = out / "metrics.json"
    write_json(metrics_path, metrics, indent=2)
    return {
        "metrics": metrics,
        "images": per_image,
        "vocabulary": vocab,
        "novel": sorted(novel & set(vocab)),
        "seed": seed,
        "model": {
            "name": spec.name,
            "description": spec.description,
            "path": str(spec.path),
            "metrics": dict(spec.metrics),
        },
        "sam": sam_identity,
        "outputs": {
            "vis": str(vis_dir),
            "results": str(results_path),
            "ground_truth": str(gt_path),
            "metrics": str(metrics_path),
        },
        "time_s": round(time.perf_counter() - start, 2),
    }
