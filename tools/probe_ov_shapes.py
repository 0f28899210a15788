#!/usr/bin/env python
"""Probe a trained OV-Shapes detector: why does (or doesn't) distillation lift novel AP?

Two measurements on the val split of an ``ovdet bench ov-shapes`` run folder, printed as JSON:

* ``region_top1``: classify every val ground-truth box by its region embedding (cosine with the
  class text embeddings of all classes, no background), base / novel top-1 accuracy. For a
  ViLD-ensemble model both the text head and the (distilled) image head are probed. This
  separates *what the embeddings know* from *how the detector scores proposals*.
* ``class_agnostic``: the detector's own detections (its test settings) evaluated with
  pycocotools ``useCats=0``: box AP50 when every class counts as one, and the recall of base /
  novel val objects (IoU >= 0.5, any detection). This separates *finding and localising* the
  objects from *naming* them.
* ``ensemble`` (ViLD-ensemble models, with ``--grid``): box AP50 base / novel for other
  inference settings of the same weights, ``TAU:LAM`` pairs (image-head temperature, lambda);
  ``TAU`` = ``inf`` gives the text head alone (a flat image-head distribution changes no
  ranking within a class), ``xF`` F times the model's own temperature (``x1:0.6667`` is the
  model as trained and tested).
* ``teacher_ensemble`` (any model, with ``--teacher-grid``): the ViLD-ensemble rule with the
  CLIP **teacher itself** as the image head: the model's text-head probabilities of each
  proposal mixed with the teacher's classification of that proposal's crops (1.0x and 1.5x),
  at the given ``TAU:LAM`` pairs. A distilled image head can at best match its teacher, so this
  is the ceiling of what distilling this teacher can add to this text head (ViLD's "CLIP on
  cropped regions", combined with the detector's scores).

Example::

    python tools/probe_ov_shapes.py --run out/ov_shapes --seed 0 --method vild_ensemble \\
        --grid inf:0.6667,0.01:0.6667,0.0625:0.5
    python tools/probe_ov_shapes.py --run out/ov_shapes --seed 0 --method vild_text \\
        --teacher-grid 0.05:0.6667

Trusted input: the method's LazyConfig file is executed Python.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import ovdet  # noqa: F401  (compat layer before detectron2)

# isort: split

import torch
import torch.nn.functional as F
from detectron2.config import instantiate
from detectron2.evaluation import inference_on_dataset
from detectron2.structures import Boxes

from ovdet.benchmarks.ov_shapes.methods import BUILTIN_METHODS
from ovdet.data.synthetic.catalog import ov_shapes_class_names, split_files
from ovdet.engine.build import load_config, model_from_config
from ovdet.evaluation.results import detections_to_coco_results
from ovdet.methods import METHODS
from ovdet.methods.vild_ensemble import OVEnsembleOutputLayers


def load_model(run: Path, seed: int, method: str, overrides: list[str]):
    seed_dir = run / f"seed{seed}"
    weights = seed_dir / method / "model_final.pth"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: run the benchmark with --methods {method}")
    cfg = load_config(BUILTIN_METHODS[method].config_path())
    cfg.ov_shapes.root = str(run / "data")
    cfg.ov_shapes.embeddings = str(seed_dir / "class_embeddings.pt")
    cfg.ov_shapes.prefix = "ov_shapes_probe"
    report = run / "report.json"  # the run's image size (the generated images' size)
    if report.is_file():
        cfg.ov_shapes.image_size = json.loads(report.read_text())["settings"]["image_size"]
    if "teacher_store" in cfg.ov_shapes:
        cfg.ov_shapes.teacher_store = str(seed_dir / "teacher_regions")
    cfg.dataloader.test.num_workers = 0
    if "distillers" in cfg.model:
        cfg.model.distillers = []  # training-only (HierKD's needs the teacher's text tower)
    # ensembles: the image-head temperature the benchmark tested with (1 / teacher logit scale)
    registered = METHODS.get(method)  # the oracle is a benchmark baseline, not a method
    if registered is not None and registered.prepare is not None:
        # e.g. the ensemble's image-head temperature: as the benchmark tested it
        registered.prepare(cfg, seed_dir / "teacher" / "teacher.pt")
    model, cfg = model_from_config(cfg, weights, overrides=overrides, device="cpu")
    return cfg, model


@torch.no_grad()
def region_top1(cfg, model, root: Path) -> dict[str, dict[str, float]]:
    """Top-1 of each head's region embedding on the val ground-truth boxes, base / novel."""
    predictor = model.roi_heads.box_predictor
    classes = F.normalize(predictor.get_vocabulary().float(), dim=-1)
    names = ov_shapes_class_names(root, "all")
    novel = set(ov_shapes_class_names(root, "novel"))
    val = json.loads(split_files(root)["val"].read_text(encoding="utf-8"))
    cat_name = {c["id"]: c["name"] for c in val["categories"]}
    per_image: dict = {}
    for ann in val["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    heads = {"text": predictor.embed}
    if isinstance(predictor, OVEnsembleOutputLayers):
        heads["image"] = lambda region: predictor.image_embed(predictor.split_features(region)[1])
    counts = {h: {"base": [0, 0], "novel": [0, 0]} for h in heads}
    for (x,) in instantiate(cfg.dataloader.test):
        anns = per_image.get(x["image_id"], [])
        if not anns:
            continue
        sy, sx = x["image"].shape[1] / x["height"], x["image"].shape[2] / x["width"]
        gt = torch.tensor(
            [
                [bx * sx, by * sy, (bx + bw) * sx, (by + bh) * sy]
                for bx, by, bw, bh in (a["bbox"] for a in anns)
            ]
        )
        features = model.backbone(model.preprocess_image([x]).tensor)
        pooled = model.roi_heads.box_pooler(
            [features[f] for f in model.roi_heads.box_in_features], [Boxes(gt)]
        )
        region = model.roi_heads.box_head(pooled)
        for head, embed in heads.items():
            top1 = (embed(region) @ classes.T).argmax(dim=1).tolist()
            for ann, pred in zip(anns, top1):
                name = cat_name[ann["category_id"]]
                slot = counts[head]["novel" if name in novel else "base"]
                slot[0] += 1
                slot[1] += int(names[pred] == name)
    return {
        h: {g: round(c / n, 4) if n else None for g, (n, c) in groups.items()}
        for h, groups in counts.items()
    }


@torch.no_grad()
def class_agnostic(cfg, model, root: Path) -> dict[str, float]:
    """Class-agnostic AP50 (pycocotools useCats=0) and base / novel recall at IoU 0.5."""
    import contextlib
    import io

    import numpy as np
    from detectron2.structures import pairwise_iou
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    val_json = split_files(root)["val"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(val_json))
    novel = set(ov_shapes_class_names(root, "novel"))
    is_novel = {c["id"]: c["name"] in novel for c in gt.dataset["categories"]}
    any_cat = gt.dataset["categories"][0]["id"]
    results, hits = [], {"base": [0, 0], "novel": [0, 0]}
    for (x,) in instantiate(cfg.dataloader.test):
        inst = model([x])[0]["instances"].to("cpu")
        boxes = inst.pred_boxes.tensor
        labels = [0] * len(inst)  # every detection as one class: class-agnostic AP
        results += detections_to_coco_results(
            x["image_id"], boxes.numpy(), inst.scores.tolist(), labels, [any_cat]
        )
        anns = gt.imgToAnns.get(x["image_id"], [])
        if not anns:
            continue
        gt_boxes = torch.tensor([[a, b, a + w, b + h] for a, b, w, h in (t["bbox"] for t in anns)])
        best = (
            pairwise_iou(Boxes(gt_boxes), Boxes(boxes)).max(dim=1).values
            if len(boxes)
            else torch.zeros(len(anns))
        )
        for ann, overlap in zip(anns, best.tolist()):
            slot = hits["novel" if is_novel[ann["category_id"]] else "base"]
            slot[0] += 1
            slot[1] += int(overlap >= 0.5)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox") if results else None
        if ev is not None:
            ev.params.useCats = 0
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    ap50 = float(ev.stats[1]) * 100 if ev is not None else 0.0
    out = {"AP50": round(ap50, 2) if np.isfinite(ap50) else None}
    for group, (n, c) in hits.items():
        out[f"recall_{group}"] = round(c / n, 4) if n else None
    return out


@torch.no_grad()
def ensemble_grid(cfg, model, grid: list[tuple[float, float]]) -> list[dict[str, float]]:
    head = getattr(model.roi_heads.box_predictor, "image_head", None)
    if head is None:
        raise ValueError("--grid needs a ViLD-ensemble model (an image head)")
    loader = instantiate(cfg.dataloader.test)
    rows = []
    saved = head.temperature, head.lam
    for tau, lam in grid:
        if isinstance(tau, str):  # "xF": F times the model's own temperature
            tau = saved[0] * float(tau[1:])
        head.temperature, head.lam = (1e9 if math.isinf(tau) else tau), lam
        bbox = inference_on_dataset(model, loader, instantiate(cfg.dataloader.evaluator))["bbox"]
        rows.append(
            {
                "tau": round(tau, 6) if math.isfinite(tau) else "inf",
                "lam": lam,
                "AP50_base": round(bbox["AP50_base"], 2),
                "AP50_novel": round(bbox["AP50_novel"], 2),
            }
        )
    head.temperature, head.lam = saved
    return rows


@torch.no_grad()
def teacher_ensemble_grid(
    cfg, model, teacher_checkpoint: Path, root: Path, grid: list[tuple[float, float]]
) -> list[dict[str, float]]:
    """Box AP50 base / novel with the teacher's crop classification as the image head."""
    from ovdet.methods.vild_ensemble import vild_ensemble_scores
    from ovdet.teacher import CLIPCropTeacher
    from ovdet.teacher.small_clip import load_small_clip

    clip = load_small_clip(teacher_checkpoint, device="cpu")
    teacher = CLIPCropTeacher(
        clip.model, preprocess=clip.preprocess, scales=(1.0, 1.5), device="cpu"
    )
    predictor = model.roi_heads.box_predictor
    names = ov_shapes_class_names(root, "all")
    base = set(ov_shapes_class_names(root, "base"))
    is_base = torch.tensor([n in base for n in names])
    classes = F.normalize(predictor.get_vocabulary().float(), dim=-1)
    state: dict = {}
    text_only = getattr(predictor, "text_probs", None)
    patched = {"predict_probs": predictor.predict_probs, "inference": model.inference}
    if text_only is not None:  # ViLD-ensemble model: use its text head alone
        patched["ensemble_probs"] = predictor.ensemble_probs
        predictor.ensemble_probs = lambda x, logits: text_only(logits)

    def inference(batched_inputs, *args, **kwargs):
        # detectron2 inputs are BGR CHW; the teacher crops RGB HWC uint8 images
        state["images"] = [
            x["image"].flip(0).permute(1, 2, 0).contiguous().numpy() for x in batched_inputs
        ]
        return patched["inference"](batched_inputs, *args, **kwargs)

    def predict_probs(predictions, proposals):
        out = []
        for image, props, probs in zip(
            state["images"], proposals, patched["predict_probs"](predictions, proposals)
        ):
            emb = teacher.embed(image, props.proposal_boxes.tensor.cpu()).to(probs)
            image_probs = (emb @ classes.to(probs).T / state["tau"]).softmax(dim=-1)
            fg = vild_ensemble_scores(probs[:, :-1], image_probs, is_base, state["lam"])
            out.append(torch.cat([fg, probs[:, -1:]], dim=1))
        return out

    model.inference, predictor.predict_probs = inference, predict_probs
    loader = instantiate(cfg.dataloader.test)
    rows = []
    try:
        for tau, lam in grid:
            state["tau"], state["lam"] = tau, lam
            evaluator = instantiate(cfg.dataloader.evaluator)
            bbox = inference_on_dataset(model, loader, evaluator)["bbox"]
            rows.append(
                {
                    "tau": tau,
                    "lam": lam,
                    "AP50_base": round(bbox["AP50_base"], 2),
                    "AP50_novel": round(bbox["AP50_novel"], 2),
                }
            )
    finally:
        model.inference = patched["inference"]
        predictor.predict_probs = patched["predict_probs"]
        if "ensemble_probs" in patched:
            predictor.ensemble_probs = patched["ensemble_probs"]
    return rows


def _grid(text: str) -> list[tuple[float | str, float]]:
    """``TAU:LAM,...``; TAU is a number, ``inf`` or ``xF`` (F times the model's own)."""
    out = []
    for item in text.split(","):
        tau, lam = item.split(":")
        out.append((tau if tau.startswith("x") else float(tau), float(lam)))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="ovdet bench ov-shapes --out folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", required=True, help="e.g. vild_text, vild_ensemble")
    parser.add_argument(
        "--grid",
        default="",
        help="TAU:LAM,... (ensemble inference settings; TAU a number, inf, or xF: F times "
        "the model's own image-head temperature)",
    )
    parser.add_argument(
        "--teacher-grid", default="", help="TAU:LAM,... with the teacher as the image head"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("opts", nargs="*", help="config overrides key=value")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Path(args.run).resolve()
    cfg, model = load_model(run, args.seed, args.method, args.opts)
    report = {"run": str(run), "seed": args.seed, "method": args.method}
    report["region_top1"] = region_top1(cfg, model, run / "data")
    report["class_agnostic"] = class_agnostic(cfg, model, run / "data")
    if args.grid:
        report["ensemble"] = ensemble_grid(cfg, model, _grid(args.grid))
    if args.teacher_grid:
        teacher = run / f"seed{args.seed}" / "teacher" / "teacher.pt"
        report["teacher_ensemble"] = teacher_ensemble_grid(
            cfg, model, teacher, run / "data", _grid(args.teacher_grid)
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
