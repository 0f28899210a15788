"""Precision / recall of pseudo-labels on novel objects before and after the self-training
merge rule, per score threshold (prints JSON).

    python tools/self_train_label_quality.py --labels RUN/round_1/labels/pseudo_labels.json \
        --gold DATA/train_base.json --truth DATA/train_all.json [--thresholds 0.1,0.2,...]

``--labels``: an ``ovdet pseudo-label`` json of the gold set's images (scores down to the
lowest threshold); ``--gold``: the training set the merge keeps (base boxes); ``--truth``:
every object of those images (OV-Shapes' ``train_all.json``). "teacher" rows score the
teacher's boxes as they are; "merged" rows the boxes the merge rule keeps at that threshold
(novel classes only, gold wins, class-agnostic NMS; ``ovdet.self_train.merge``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ovdet.pseudo_label.quality import label_quality  # noqa: E402
from ovdet.self_train.merge import MergeSettings, merge_pseudo_labels  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", required=True)
    p.add_argument("--gold", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--thresholds", default="0.1,0.2,0.3,0.4,0.5,0.7")
    p.add_argument("--iou", type=float, default=0.5)
    args = p.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    pseudo = json.loads(Path(args.labels).read_text())
    gold = json.loads(Path(args.gold).read_text())
    names = {c["id"]: c["name"] for c in pseudo["categories"]}
    with_gold = {c["name"] for c in gold["categories"] if any(
        a["category_id"] == c["id"] for a in gold["annotations"])}  # fmt: skip
    novel = [n for n in names.values() if n not in with_gold]
    merged, stats = merge_pseudo_labels(gold, pseudo, MergeSettings(high=0.0, low=0.0))
    merged["annotations"] = [a for a in merged["annotations"] if a.get("pseudo")]
    out = {"labels": args.labels, "novel": novel, "iou": args.iou, "merge_stats": stats}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "merged.json"
        path.write_text(json.dumps(merged))
        for key, source in (("teacher", args.labels), ("merged", path)):
            q = label_quality(source, args.truth, thresholds=thresholds, novel=novel, iou=args.iou)
            out[key] = [{"threshold": r["threshold"], "novel": r["novel"]} for r in q["rows"]]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
