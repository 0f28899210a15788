"""The OV-Shapes mask study's table: where novel masks come from, over seeds (docs/sam.md).

Reads one or more ``report.json`` of ``ovdet bench ov-shapes --methods vild_text,sam_boxes,
mask_head_base,sam_mask_head,mask_head_oracle`` (seeds may come from separate runs; a seed
listed twice is refused) and prints / writes one JSON: per method its description and
per-seed box and mask AP (``segm_*``), the mean and std over seeds, and the share of the gap
between the base-mask head and the oracle mask head that each SAM-based method closes on
novel mask AP50 and AP, per seed and of the means:

    closed = (method - base) / (oracle - base)

with ``base`` the fine-tuning control ``mask_head_base`` (the same extra iterations as the
SAM-supervised and oracle heads) and, for reference, ``vild_text``'s own head.

    python tools/sam_mask_study.py RUN_A/report.json RUN_B/report.json \
        --sam-small docs/results/sam_small.json --out docs/results/sam_mask_study_ov_shapes.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ovdet.benchmarks.ov_shapes.summary import method_keys, summarise

ROLES = {
    "vild_text": "(a) mask head trained on base masks (as the detector was trained)",
    "mask_head_base": "(a') control: (a) + the same fine-tuning, novel boxes without masks",
    "sam_boxes": "(b) SAM masks of the detector's boxes",
    "sam_mask_head": "(c) mask head fine-tuned with SAM masks of the novel boxes",
    "mask_head_oracle": "(d) oracle: mask head fine-tuned with the novel objects' true masks",
}
GAP_KEYS = ("segm_AP50_novel", "segm_AP_novel")
ROW_KEYS = (
    "seed",
    "AP50_base",
    "AP50_novel",
    "segm_AP50_base",
    "segm_AP50_novel",
    "segm_AP_base",
    "segm_AP_novel",
    "iterations",
    "train_time_s",
)


def closed_gap(value: float | None, base: float | None, oracle: float | None) -> float | None:
    """(value - base) / (oracle - base), None when undefined (no gap or a missing number)."""
    if value is None or base is None or oracle is None or oracle == base:
        return None
    return round((value - base) / (oracle - base), 4)


def combine(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The study's table from bench reports (see the module docstring)."""
    methods: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, entry in report["methods"].items():
            if name not in ROLES:
                continue
            slot = methods.setdefault(
                name, {"role": ROLES[name], "description": entry["description"], "per_seed": []}
            )
            seeds = {r["seed"] for r in slot["per_seed"]}
            for run in entry["per_seed"]:
                if run["seed"] in seeds:
                    raise ValueError(f"method {name}: seed {run['seed']} is in two reports")
                slot["per_seed"].append({k: run[k] for k in ROW_KEYS if k in run})
    missing = [m for m in ROLES if m not in methods]
    if missing:
        raise ValueError(f"the reports lack methods {missing}: run them (see docs/sam.md)")
    for slot in methods.values():
        slot["per_seed"].sort(key=lambda r: r["seed"])
        slot.update(summarise(slot["per_seed"], method_keys(slot["per_seed"])))
    seeds = [r["seed"] for r in methods["vild_text"]["per_seed"]]
    for name, slot in methods.items():
        if [r["seed"] for r in slot["per_seed"]] != seeds:
            raise ValueError(f"method {name} ran seeds {slot['per_seed']}, vild_text {seeds}")
    gap: dict[str, Any] = {}
    for name in ("sam_boxes", "sam_mask_head"):
        for base_name in ("mask_head_base", "vild_text"):
            out = {}
            for key in GAP_KEYS:
                per_seed = [
                    closed_gap(r[key], b[key], o[key])
                    for r, b, o in zip(
                        methods[name]["per_seed"],
                        methods[base_name]["per_seed"],
                        methods["mask_head_oracle"]["per_seed"],
                    )
                ]
                of_means = closed_gap(
                    methods[name]["mean"].get(key),
                    methods[base_name]["mean"].get(key),
                    methods["mask_head_oracle"]["mean"].get(key),
                )
                out[key] = {"per_seed": per_seed, "of_means": of_means}
            gap[f"{name}_vs_{base_name}"] = out
    return {"seeds": seeds, "methods": {m: methods[m] for m in ROLES}, "gap_closed": gap}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="bench report.json files")
    parser.add_argument("--sam-small", type=Path, help="pretrain-sam metrics (mIoU) to include")
    parser.add_argument("--command", action="append", default=[], help="commands to record")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        if not path.is_file():
            parser.error(f"{path} not found")
        reports.append(json.loads(path.read_text(encoding="utf-8")))
    try:
        table = combine(reports)
    except ValueError as exc:
        parser.error(str(exc))
    table = {
        "benchmark": "OV-Shapes mask study: ViLD-text's boxes (frozen), masks from elsewhere",
        "data": reports[0].get("data", {}).get("settings", reports[0].get("data")),
        "commands": args.command,
        **table,
    }
    if args.sam_small:
        small = json.loads(args.sam_small.read_text(encoding="utf-8"))
        table["small_sam_miou_from_true_boxes"] = {
            k: small[k]
            for k in ("miou_base", "miou_novel", "random_miou_base", "random_miou_novel")
        }
    text = json.dumps(table, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
