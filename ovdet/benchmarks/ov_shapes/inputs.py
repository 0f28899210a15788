"""The inputs that OV-Shapes benchmark methods need beyond ViLD-text (their ``needs`` in the
method registry, ``ovdet.methods``), computed for the seed being run:

* region targets (:func:`prepare_region_targets`): the top-M proposals of the **ViLD-text
  model of the same seed** (its RPN is class-agnostic and saw only base boxes, as in ViLD),
  embedded by the seed's CLIP teacher (crops at 1.0x and 1.5x), written once per seed to a
  region store ``<seed dir>/teacher_regions`` that every distillation method reuses (the store
  resumes, so a second method finds it complete and skips straight to training);
* the caption text tower (:func:`prepare_caption_encoder`): HierKD's global level contrasts
  image embeddings with the teacher's text embeddings of the image captions.

The quality of the region targets is measured once per store (:func:`region_target_quality`,
saved as ``teacher_regions/quality.json`` and copied into the report): the proposals' recall of
the base and novel training objects (which are present, unannotated, in ``train_base``), and the
teacher's top-1 class on the best proposal of each recalled object. These two numbers bound
what distillation can teach about novel classes.

``vild_text`` must therefore run before these methods in the same benchmark run (the
method order of ``--methods`` is kept; a missing ViLD-text model is an error that says so).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ovdet.benchmarks.ov_shapes.context import MethodContext

logger = logging.getLogger(__name__)

TOP_M = 32  # proposals per training image, as ViLD's offline targets
SCALES = (1.0, 1.5)
STORE_DIR = "teacher_regions"


def vild_text_weights(ctx: MethodContext) -> Path:
    """``model_final.pth`` of this seed's ViLD-text run (a method that builds on it: the
    distillation methods' proposals, the mask study's detector).

    Raises:
        FileNotFoundError: ViLD-text has not run for this seed, saying what to run.
    """
    weights = ctx.work_dir.parent / "vild_text" / "model_final.pth"
    if not weights.is_file():
        raise FileNotFoundError(
            f"method {ctx.name!r} builds on this seed's ViLD-text model, but "
            f"{weights} does not exist: run the 'vild_text' method first in the same run "
            f"(e.g. --methods vild_text,{ctx.name})"
        )
    return weights


def _vild_text_model(ctx: MethodContext, cfg):
    """The ViLD-text detector of this seed (same data, image size and vocabulary fields)."""
    from ovdet.engine.build import load_config, model_from_config
    from ovdet.methods import get_method

    weights = vild_text_weights(ctx)
    base = load_config(get_method("vild_text").config_path("ov_shapes"))
    for key in ("root", "embeddings", "image_size", "prefix"):
        base.ov_shapes[key] = cfg.ov_shapes[key]
    model, _ = model_from_config(base, weights, device=ctx.device)
    return model, weights


QUALITY_FILE = "quality.json"


def region_target_quality(
    store,
    coco_json: str | Path,
    class_embeddings: Any,
    class_names: list[str],
    novel: list[str],
    iou: float = 0.5,
) -> dict[str, dict[str, float | int]]:
    """How good the stored region targets are, for base and novel objects.

    For every annotated object of ``coco_json`` (use the *all-class* training annotations: the
    store's images are the training images, where novel objects are present but unlabelled):

    - recalled: some stored proposal has IoU >= ``iou`` with it;
    - teacher correct: the teacher embedding of its best-overlapping proposal is closest (cosine)
      to the object's class text embedding among ``class_embeddings``.

    Args:
        store: a :class:`~ovdet.data.region_store.RegionEmbeddingStore` (boxes in original pixels).
        coco_json: COCO annotations of the store's images (all classes).
        class_embeddings: (C, D) class text embeddings, rows named by ``class_names``.
        class_names: C names (COCO category names).
        novel: names of the novel classes.
        iou: recall threshold.

    Returns:
        ``{"base"|"novel": {"objects", "recall", "teacher_top1"}}``; ``teacher_top1`` is over
        the recalled objects (None when none is recalled).
    """
    import json

    import torch
    import torch.nn.functional as F
    from detectron2.structures import Boxes, pairwise_iou

    data = json.loads(Path(coco_json).read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in data["categories"]}
    row = {name: i for i, name in enumerate(class_names)}
    missing = sorted({n for n in names.values() if n not in row})
    if missing:
        raise ValueError(f"region_target_quality: classes {missing} have no text embedding")
    text = F.normalize(torch.as_tensor(class_embeddings).float(), dim=-1)
    novel_set = set(novel)
    per_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    counts = {g: [0, 0, 0] for g in ("base", "novel")}  # objects, recalled, teacher correct
    for image_id, anns in per_image.items():
        target = store.get(image_id) if image_id in store else None
        groups = ["novel" if names[a["category_id"]] in novel_set else "base" for a in anns]
        for g in groups:
            counts[g][0] += 1
        if target is None or len(target["boxes"]) == 0:
            continue
        gt = torch.tensor(
            [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32
        )
        best_iou, best = pairwise_iou(Boxes(gt), Boxes(target["boxes"].float())).max(dim=1)
        emb = F.normalize(target["embeddings"].float()[best], dim=-1)
        top1 = (emb @ text.T).argmax(dim=1)
        for a, g, overlap, cls in zip(anns, groups, best_iou.tolist(), top1.tolist()):
            if overlap >= iou:
                counts[g][1] += 1
                counts[g][2] += int(cls == row[names[a["category_id"]]])
    return {
        g: {
            "objects": n,
            "recall": round(r / n, 4) if n else None,
            "teacher_top1": round(c / r, 4) if r else None,
        }
        for g, (n, r, c) in counts.items()
    }


def prepare_region_targets(ctx: MethodContext, cfg) -> None:
    """Extract (or reuse) the seed's region store and point the training mapper at it."""
    from detectron2.data import DatasetCatalog
    from detectron2.data import transforms as T

    from ovdet.data.region_store import RegionEmbeddingStore
    from ovdet.data.synthetic.catalog import ov_shapes_dataset
    from ovdet.teacher import CLIPCropTeacher
    from ovdet.teacher.extract import extract_regions
    from ovdet.teacher.proposals import ModelProposals
    from ovdet.teacher.small_clip import load_small_clip
    from ovdet.utils.io import file_sha256

    store_dir = ctx.work_dir.parent / STORE_DIR
    clip = load_small_clip(ctx.teacher_checkpoint, device=ctx.device)
    teacher = CLIPCropTeacher(
        clip.model, preprocess=clip.preprocess, scales=SCALES, device=ctx.device
    )
    model, weights = _vild_text_model(ctx, cfg)
    store = RegionEmbeddingStore(
        store_dir,
        teacher=f"ovdet-small-clip:{file_sha256(ctx.teacher_checkpoint)}",
        dim=teacher.dim,
        dtype="float16",
        scales=list(SCALES),
        top_m=TOP_M,
        proposals=f"vild_text RPN {file_sha256(weights)}",
    )
    size = int(cfg.ov_shapes.image_size)
    proposals = ModelProposals(model, augmentations=[T.ResizeShortestEdge(size, size)], top_m=TOP_M)
    name = ov_shapes_dataset(cfg.ov_shapes.root, "train_base", cfg.ov_shapes.prefix)
    summary = extract_regions(
        DatasetCatalog.get(name), teacher, proposals, store, top_m=TOP_M, progress=False
    )
    logger.info("region targets for %s: %s", ctx.name, summary)
    quality_file = store_dir / QUALITY_FILE
    if not quality_file.is_file():
        from ovdet.data.synthetic import ov_shapes_class_names, split_files
        from ovdet.text import load_class_embeddings
        from ovdet.utils.io import write_json

        root = cfg.ov_shapes.root
        quality = region_target_quality(
            store,
            split_files(root)["train_all"],
            load_class_embeddings(cfg.ov_shapes.embeddings, select=ov_shapes_class_names(root)),
            ov_shapes_class_names(root, "all"),
            ov_shapes_class_names(root, "novel"),
        )
        write_json(quality_file, quality, indent=2, sort_keys=True)
        logger.info("region target quality (recall@0.5, teacher top-1): %s", quality)
    cfg.ov_shapes.teacher_store = str(store_dir)


def prepare_caption_encoder(ctx: MethodContext, cfg) -> None:
    """Give every caption distiller the teacher's text tower (this seed's checkpoint)."""
    from detectron2.config import LazyCall as L

    from ovdet.modeling.distill import CaptionDistiller
    from ovdet.text import OpenCLIPTextEncoder

    config_json = Path(ctx.teacher_checkpoint).with_suffix(".json")
    for distiller in cfg.model.distillers:
        if distiller._target_ is CaptionDistiller:
            distiller.text_encoder = L(OpenCLIPTextEncoder.from_config)(
                config=str(config_json), checkpoint=str(ctx.teacher_checkpoint), device=ctx.device
            )
