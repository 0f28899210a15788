"""``ovdet demo``: text-prompted open-vocabulary detection on fresh OV-Shapes images.

Generates a few OV-Shapes validation images with a seed the shipped models never saw, loads
the shipped small CLIP teacher text tower and ViLD-text detector (``ovdet/assets/ov_shapes``,
made by ``ovdet bench ov-shapes --export-demo``; nothing is trained here), detects a
vocabulary that includes the novel classes -- classes the detector never saw a box of --
and writes::

    OUT/images/val/*.png          the generated images
    OUT/vis/*.png                 detections drawn on them (novel classes marked "*")
    OUT/results.json              detections, COCO results format (XYWH boxes)
    OUT/ground_truth.json         the images' COCO instances ground truth
    OUT/metrics.json              box AP50 over all / base / novel classes

and prints a short table. ``--vocab "red circle,blue star"`` detects other names (they are
encoded by the teacher's text tower); classes of the images left out of the vocabulary
count as missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "run_demo"]


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def run_demo(
    out: str | Path,
    *,
    num_images: int = 6,
    seed: int = 1,
    vocabulary: list[str] | None = None,
    device: str = "auto",
    score_thresh: float = 0.05,
    show_thresh: float = 0.3,
    assets: str | Path | None = None,
) -> dict[str, Any]:
    """Run the demo (see the module docstring).

    Args:
        out: output folder.
        num_images: generated images.
        seed: generator seed of the images (the shipped models were trained on seed 0).
        vocabulary: class names to detect (default: every OV-Shapes class, base + novel).
        device: "auto", "cpu" or "cuda".
        score_thresh: lowest score kept in ``results.json`` (and scored by AP).
        show_thresh: lowest score drawn and printed.
        assets: assets folder (default: the shipped ``ovdet/assets/ov_shapes``).

    Returns:
        ``{"metrics": {"AP50", "AP50_base", "AP50_novel", ...}, "images": [per-image dicts:
        file, objects, detections (name, score, box XYXY, novel)], "vocabulary", "novel",
        "outputs": {name: path}, "time_s"}``.
    """
    import ovdet  # noqa: F401  (compat layer before detectron2)

    # isort: split

    from detectron2.data import transforms as T

    from ovdet.data.synthetic import OVShapesConfig, generate_ov_shapes
    from ovdet.evaluation import evaluate_coco_results
    from ovdet.model_zoo.assets import load_demo_assets
    from ovdet.predictor import OVPredictor
    from ovdet.utils.image import load_image
    from ovdet.utils.visualize import draw_detections

    start = time.perf_counter()
    if num_images < 1:
        raise ValueError(f"--num-images must be >= 1, got {num_images}")
    out = Path(out)
    from ovdet.utils.device import resolve_device

    device = resolve_device(device)
    bundle = load_demo_assets(assets, device=device)
    manifest = bundle.manifest

    # 1. fresh images from the generator the assets were trained with
    params = dict(manifest.get("generator") or {})
    config = OVShapesConfig.from_dict(params) if params else OVShapesConfig()
    generate_ov_shapes(
        out, num_train=0, num_val=num_images, seed=seed, config=config, progress=False
    )
    gt = json.loads((out / "val.json").read_text(encoding="utf-8"))
    for name in ("train_all.json", "train_base.json", "captions_train.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "images" / "train", ignore_errors=True)

    # 2. vocabulary: names -> embeddings through the teacher's text tower (cached by the model)
    vocab = list(vocabulary) if vocabulary else bundle.classes
    novel = set(bundle.novel)
    size = bundle.image_size
    predictor = OVPredictor(
        bundle.model,
        device=device,
        score_thresh=score_thresh,
        resize=T.ResizeShortestEdge([size, size], max_size=size),
    )
    predictor.set_vocabulary(vocab)

    # 3. detect, draw, collect COCO results
    name_to_id = {c["name"]: int(c["id"]) for c in gt["categories"]}
    extra_cats = []
    for name in vocab:
        if name not in name_to_id:  # a class the images do not annotate: scored as no GT
            name_to_id[name] = max(name_to_id.values()) + 1
            extra_cats.append({"id": name_to_id[name], "name": name})
    gt["categories"] = gt["categories"] + extra_cats
    gt_path = out / "ground_truth.json"
    gt_path.write_text(json.dumps(gt), encoding="utf-8")
    (out / "val.json").unlink(missing_ok=True)

    vis_dir = out / "vis"
    vis_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[int, int] = {}
    for ann in gt["annotations"]:
        counts[ann["image_id"]] = counts.get(ann["image_id"], 0) + 1
    results, per_image = [], []
    for img in gt["images"]:
        path = out / "images" / "val" / img["file_name"]
        rgb = load_image(path)
        pred = predictor.predict(rgb)
        for box, score, name in zip(pred["boxes"], pred["scores"], pred["class_names"]):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append(
                {
                    "image_id": int(img["id"]),
                    "category_id": name_to_id[name],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
        keep = pred["scores"] >= show_thresh
        shown = [f"*{n}" if n in novel else n for n, k in zip(pred["class_names"], keep) if k]
        draw_detections(
            rgb,
            pred["boxes"][keep],
            pred["labels"][keep],
            shown,
            pred["scores"][keep],
            masks=pred["masks"][keep] if "masks" in pred else None,
        ).save(vis_dir / img["file_name"])
        per_image.append(
            {
                "file": str(path),
                "objects": counts.get(img["id"], 0),
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
        )
    results_path = out / "results.json"
    results_path.write_text(json.dumps(results), encoding="utf-8")

    # 4. score against the generated ground truth
    gt_novel = [n for n in bundle.novel if n in {c["name"] for c in gt["categories"]}]
    metrics = evaluate_coco_results(gt_path, results, novel=gt_novel).get("bbox", {})
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return {
        "metrics": metrics,
        "images": per_image,
        "vocabulary": vocab,
        "novel": sorted(novel & set(vocab)),
        "seed": seed,
        "outputs": {
            "vis": str(vis_dir),
            "results": str(results_path),
            "ground_truth": str(gt_path),
            "metrics": str(metrics_path),
        },
        "time_s": round(time.perf_counter() - start, 2),
    }


def format_table(summary: dict[str, Any], show_thresh: float, max_listed: int = 6) -> str:
    """The short table printed by ``ovdet demo``."""
    vocab, novel = summary["vocabulary"], summary["novel"]
    lines = [
        f"ovdet demo: {len(summary['images'])} new OV-Shapes images (seed {summary['seed']}), "
        f"vocabulary of {len(vocab)} classes, {len(novel)} of them novel (marked *): the "
        "detector never saw a box of a novel class",
        "",
        f"{'image':<12} {'objects':>7}  detections (score >= {show_thresh:.2f})",
    ]
    for img in summary["images"]:
        dets = ", ".join(
            f"{'*' if d['novel'] else ''}{d['name']} {d['score']:.2f}"
            for d in img["detections"][:max_listed]
        )
        if len(img["detections"]) > max_listed:
            dets += f", ... ({len(img['detections'])} in all)"
        name = Path(img["file"]).name
        lines.append(f"{name:<12} {img['objects']:>7}  {dets or '-'}")
    m = summary["metrics"]

    def ap(key):
        value = m.get(key)
        return "n/a" if value is None or not np.isfinite(value) else f"{value:.1f}"

    lines += [
        "",
        f"box AP50 on these images: all {ap('AP50')}  base {ap('AP50_base')}  "
        f"novel* {ap('AP50_novel')}",
        f"wrote {summary['outputs']['vis']}/*.png, {summary['outputs']['results']}, "
        f"{summary['outputs']['ground_truth']}, {summary['outputs']['metrics']} "
        f"({summary['time_s']:.1f}s)",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet demo",
        description="Open-vocabulary detection on new OV-Shapes images with the shipped small "
        "teacher + ViLD-text detector (no training): PNG visualisations, COCO results json, "
        "AP50 on base and novel classes.",
    )
    p.add_argument("--out", default="output/demo", help="output folder (output/demo)")
    p.add_argument("--num-images", type=int, default=6, help="generated images (6)")
    p.add_argument("--seed", type=int, default=1, help="image seed (1; training used 0)")
    p.add_argument("--vocab", type=_names, default=None, help="comma-separated class names")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--score-thresh", type=float, default=0.05, help="kept in results (0.05)")
    p.add_argument("--show-thresh", type=float, default=0.3, help="drawn and printed (0.3)")
    p.add_argument("--assets", default=None, help="assets folder (the shipped ones)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """``ovdet demo``: see the module docstring and ``--help``."""
    args = build_parser().parse_args(argv)
    summary = run_demo(
        args.out,
        num_images=args.num_images,
        seed=args.seed,
        vocabulary=args.vocab,
        device=args.device,
        score_thresh=args.score_thresh,
        show_thresh=args.show_thresh,
        assets=args.assets,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary, args.show_thresh))
    sys.stdout.flush()
    return 0
