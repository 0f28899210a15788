"""``ovdet evaluate``: score detections against a ground-truth json.

Examples::

    ovdet evaluate --gt instances_val2017_all.json --pred coco_instances_results.json \\
        --novel-file novel.txt --iou-types bbox,segm
    ovdet evaluate --gt val.json --pred out/detections.json --image-root images/
    ovdet evaluate --gt lvis_v1_val.json --pred lvis_instances_results.json --lvis --json

``--pred`` is a COCO results list (detectron2, mmdetection, YOLO exports, ``ovdet detect``'s
results.json), a COCO dataset of detections (``ovdet detect``'s detections.json) or
detectron2's instances_predictions.pth. Both files are validated; predictions are joined to
the ground truth by category name and image file name when they carry them, else by ids
that are checked against the ground-truth boxes (``ovdet.evaluation.predictions`` states
the rule); a join that cannot be right is refused with the reason. How the join was made is
printed to stderr, with any warnings; the metrics go to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

from tabulate import tabulate

__all__ = ["main"]

JOIN_RULE = """\
how predictions are joined to the ground truth:
  categories by name when the predictions name them (category_name, a dataset file's
  categories, or a string category_id; case, '_' and '-' ignored), else by id;
  images by file name when they name them (file_name, a dataset file's images, or a string
  image_id): same path, path under --image-root, trailing path, unique basename, stem;
  else by id. Ids must be the ground truth's; a join by ids is checked against the
  ground-truth boxes (do the top detections overlap objects of their image better than of
  other images? do they carry the overlapped object's category more often than chance?)
  and refused when it fails (--trust-ids skips the check). The rule in full:
  ovdet/evaluation/predictions/__init__.py."""


def _parse_names(text: str) -> list[str | int]:
    """Class names, or category ids when the item is an integer."""
    out: list[str | int] = []
    for item in text.split(","):
        item = item.strip()
        if item:
            out.append(int(item) if item.isdigit() else item)
    return out


def _read_names_file(path: str) -> list[str | int]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--novel-file not found: {path}")
    names = [line.strip() for line in p.read_text().splitlines()]
    return [int(n) if n.isdigit() else n for n in names if n and not n.startswith("#")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovdet evaluate",
        description="COCO/LVIS AP of a detection json, with base/novel splits.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=JOIN_RULE,
    )
    parser.add_argument("--gt", required=True, help="ground-truth json (COCO or LVIS format)")
    parser.add_argument(
        "--pred",
        required=True,
        help="detections: json list of COCO results, a COCO dataset of detections "
        "(detect's detections.json) or detectron2's instances_predictions.pth",
    )
    novel = parser.add_mutually_exclusive_group()
    novel.add_argument("--novel", help="comma-separated novel class names (or category ids)")
    novel.add_argument("--novel-file", help="file with one novel class name (or id) per line")
    parser.add_argument(
        "--iou-types", default="bbox", help="comma-separated subset of bbox,segm (default bbox)"
    )
    parser.add_argument(
        "--lvis", action="store_true", help="LVIS federated evaluation (APr/APc/APf)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    parser.add_argument(
        "--image-root",
        help="folder the ground truth's file_name are relative to (matches prediction file "
        "names given as paths)",
    )
    parser.add_argument(
        "--trust-ids",
        action="store_true",
        help="do not check a join by ids against the ground-truth boxes (for predictions "
        "made with this ground truth's ids by a detector too weak to pass the check)",
    )
    parser.add_argument(
        "--drop-unknown",
        action="store_true",
        help="ignore predictions of images or categories not in the ground truth (counted) "
        "instead of refusing them",
    )
    return parser


def _format_table(results: dict[str, dict[str, float]]) -> str:
    keys: list[str] = []
    for metrics in results.values():
        keys += [k for k in metrics if k not in keys]
    rows = [[t] + [metrics.get(k, float("nan")) for k in keys] for t, metrics in results.items()]
    return tabulate(rows, headers=["iou type"] + keys, floatfmt=".2f", tablefmt="pipe")


def _jsonable(results: dict[str, dict[str, float]]) -> dict:
    return {
        t: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}
        for t, m in results.items()
    }


def _evaluate(args: argparse.Namespace, iou_types: list[str]) -> tuple[dict, str]:
    """(metrics, how the predictions were joined)."""
    from ovdet.evaluation.coco import evaluate_coco_results, load_coco_gt
    from ovdet.evaluation.lvis import evaluate_lvis_results, load_lvis_gt
    from ovdet.evaluation.predictions import join_predictions, load_predictions

    for flag, path in (("--gt", args.gt), ("--pred", args.pred)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{flag} file not found: {path}")
    if args.image_root is not None and not Path(args.image_root).is_dir():
        raise FileNotFoundError(f"--image-root folder not found: {args.image_root}")
    novel = None
    if args.novel is not None:
        novel = _parse_names(args.novel)
    elif args.novel_file is not None:
        novel = _read_names_file(args.novel_file)
    if args.lvis and novel is not None:
        raise ValueError("--novel/--novel-file do not apply to --lvis (novel = APr)")
    bad = [t for t in iou_types if t not in ("bbox", "segm")]
    if bad or not iou_types:
        raise ValueError(f"--iou-types {args.iou_types!r}: use bbox, segm or bbox,segm")
    gt = (
        load_lvis_gt(args.gt, iou_types)
        if args.lvis
        else load_coco_gt(args.gt, iou_types=iou_types)
    )
    joined = join_predictions(
        load_predictions(args.pred),
        gt.dataset,
        iou_types,
        image_root=args.image_root,
        trust_ids=args.trust_ids,
        drop_unknown=args.drop_unknown,
    )
    if args.lvis:
        results = evaluate_lvis_results(gt, joined, iou_types)
    else:
        results = evaluate_coco_results(gt, joined, novel=novel, iou_types=iou_types)
    return results, joined.report.describe()


def main(argv: list[str] | None = None) -> int:
    """Run ``ovdet evaluate``; returns the exit status.

    Bad input raises (the ``ovdet`` command prints it as one line and exits with 2);
    warnings and the join are printed to stderr before the metrics.
    """
    args = build_parser().parse_args(argv)
    iou_types = [t.strip() for t in args.iou_types.split(",") if t.strip()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results, joined = _evaluate(args, iou_types)
        finally:
            for w in caught:
                if issubclass(w.category, UserWarning):
                    print(f"ovdet evaluate: warning: {w.message}", file=sys.stderr)
    print(f"ovdet evaluate: {joined}", file=sys.stderr)
    if args.json:
        print(json.dumps(_jsonable(results), indent=2))
    else:
        print(_format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
