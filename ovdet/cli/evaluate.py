"""``ovdet evaluate``: score a COCO-format detection json against a ground-truth json.

Examples::

    ovdet evaluate --gt instances_val2017_all.json --pred coco_instances_results.json \\
        --novel-file novel.txt --iou-types bbox,segm
    ovdet evaluate --gt lvis_v1_val.json --pred lvis_instances_results.json --lvis --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tabulate import tabulate

from ovdet.evaluation.coco import evaluate_coco_results
from ovdet.evaluation.lvis import evaluate_lvis_results

__all__ = ["main"]


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
    )
    parser.add_argument("--gt", required=True, help="ground-truth json (COCO or LVIS format)")
    parser.add_argument("--pred", required=True, help="detections: json list of COCO results")
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


def main(argv: list[str] | None = None) -> int:
    """Run ``ovdet evaluate``; returns the exit status (2 on bad input)."""
    args = build_parser().parse_args(argv)
    iou_types = [t.strip() for t in args.iou_types.split(",") if t.strip()]
    try:
        for flag, path in (("--gt", args.gt), ("--pred", args.pred)):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{flag} file not found: {path}")
        novel = None
        if args.novel is not None:
            novel = _parse_names(args.novel)
        elif args.novel_file is not None:
            novel = _read_names_file(args.novel_file)
        if args.lvis:
            if novel is not None:
                raise ValueError("--novel/--novel-file do not apply to --lvis (novel = APr)")
            results = evaluate_lvis_results(args.gt, args.pred, iou_types)
        else:
            results = evaluate_coco_results(args.gt, args.pred, novel=novel, iou_types=iou_types)
    except (FileNotFoundError, ValueError) as e:
        print(f"ovdet evaluate: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(_jsonable(results), indent=2))
    else:
        print(_format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
