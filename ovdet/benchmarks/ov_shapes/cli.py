"""``ovdet bench ov-shapes``: the OV-Shapes benchmark from the command line.

ovdet bench ov-shapes --json                       default size (CPU: <= 30 min on 2 cores)
ovdet bench ov-shapes --seeds 0,1,2 --out runs/ovs
ovdet bench ov-shapes --data DIR --novel "cat,dog" [--captions F]
ovdet bench ov-shapes --methods vild_text,rkd_ensemble --export-demo DIR
    --export-method rkd_ensemble          train, then write the model bundle of a method
                                          (ovdet/assets/models/<name>: ovdet models lists it)
ovdet bench ov-shapes --suite default,textures,palette,photo --seeds 0,1 --out runs/suite
                                                   every world, one suite_report.json
ovdet bench ov-shapes --merge a/suite_report.json b/suite_report.json --out runs/suite
                                                   worlds run apart, one suite_report.json
ovdet bench ov-shapes --suite textures --methods vild_text,rkd_ensemble \
    --self-train vild_text,rkd_ensemble           then self-train those detectors (1 round,
                                                   700 iterations, gold-only controls)
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from ovdet.benchmarks.ov_shapes.methods import BUILTIN_METHODS
from ovdet.benchmarks.ov_shapes.runner import BenchmarkSettings, run_benchmark
from ovdet.benchmarks.ov_shapes.self_train import GAIN_KEYS
from ovdet.benchmarks.ov_shapes.suite import (
    BASELINE,
    SUITE_REPORT,
    merge_suite_reports,
    run_suite,
)
from ovdet.data.synthetic.worlds import DEFAULT_SUITE, WORLDS
from ovdet.utils.io import write_json
from ovdet.utils.logs import log_progress_to_stderr

__all__ = ["build_parser", "format_report", "format_suite_report", "main"]


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    d = BenchmarkSettings(out="")
    methods = ", ".join(f"{k} ({m.description})" for k, m in BUILTIN_METHODS.items())
    p = argparse.ArgumentParser(
        prog="ovdet bench ov-shapes",
        description="Generate OV-Shapes, pretrain a small CLIP teacher, train detectors on base "
        "boxes with its text embeddings, and report box AP50 on base / novel classes (every "
        "class in the vocabulary), the oracle, the teacher's zero-shot accuracy, wall time and "
        "peak memory.",
    )
    p.add_argument("--out", default="output/bench_ov_shapes", help="work folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--seeds", type=_ints, default=list(d.seeds), help="comma-separated (0)")
    p.add_argument("--num-train", type=int, default=d.num_train, help=f"({d.num_train})")
    p.add_argument("--num-val", type=int, default=d.num_val, help=f"({d.num_val})")
    p.add_argument("--image-size", type=int, default=d.image_size, help=f"({d.image_size})")
    p.add_argument("--data-seed", type=int, default=d.data_seed, help="generated data seed")
    p.add_argument("--teacher-epochs", type=int, default=d.teacher_epochs)
    p.add_argument("--teacher-steps", type=int, default=None, help="cap on teacher steps")
    p.add_argument("--teacher-batch-size", type=int, default=d.teacher_batch_size)
    p.add_argument("--det-iters", type=int, default=None, help="detector iterations (config's)")
    p.add_argument("--det-batch-size", type=int, default=None, help="detector batch (config's)")
    p.add_argument("--num-workers", type=int, default=None, help="detector data workers")
    p.add_argument("--threads", type=int, default=None, help="torch threads (half the cores)")
    p.add_argument("--methods", type=_names, default=None, help=f"comma-separated: {methods}")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--data", help="external COCO-format dataset folder instead of generating")
    p.add_argument("--novel", type=_names, default=None, help="novel class names of --data")
    p.add_argument("--captions", help="captions json of --data's training images")
    p.add_argument(
        "--export-demo",
        metavar="DIR",
        help="write the model bundle (ovdet/assets/models/<name> format: detector, teacher "
        "text tower, manifest with checksums and metrics, README) of the first seed's "
        "--export-method run here",
    )
    p.add_argument(
        "--export-method",
        default=d.export_method,
        metavar="METHOD",
        help=f"the method --export-demo exports ({d.export_method}); must be among --methods",
    )
    worlds = "; ".join(f"{w.name}: {w.description}" for w in WORLDS.values())
    p.add_argument(
        "--suite",
        type=_names,
        default=None,
        help="run every method and seed in each of these worlds (comma-separated; 'standard' "
        f"= {','.join(DEFAULT_SUITE)}, 'all' = every world), each in --out/<world>, and write "
        f"--out/suite_report.json. Worlds: {worlds}",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="REPORT",
        help="merge suite_report.json files of other worlds (run apart, with the same sizes "
        "and schedule) into --out/suite_report.json, recomputing the summaries and the "
        "method choice; runs nothing",
    )
    p.add_argument(
        "--self-train",
        type=_names,
        default=[],
        metavar="METHODS",
        help="after training, self-train these methods' detectors (comma-separated, among "
        "--methods): ovdet self-train per seed in seed<k>/self_train/<method>, reported per "
        "round beside a gold-only control",
    )
    p.add_argument("--self-train-rounds", type=int, default=d.self_train_rounds, help="(1)")
    p.add_argument(
        "--self-train-iters",
        type=int,
        default=d.self_train_iters,
        help=f"iterations of each student and control ({d.self_train_iters})",
    )
    p.add_argument(
        "--self-train-seed",
        type=int,
        default=d.self_train_seed,
        help=f"the students' seed, the same for every run seed ({d.self_train_seed})",
    )
    p.add_argument(
        "--no-control", action="store_true", help="self-train without the gold-only controls"
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def format_report(report: dict) -> str:
    """A short human-readable table of a report."""

    def pct(x):
        return "   n/a" if x is None else f"{100 * x:5.1f}%"

    def ap(x, sd=None):
        if x is None:
            return "     n/a"
        return f"{x:5.1f}" + (f" ±{sd:.1f}" if sd else "")

    t = report["teacher"]
    seeds = report["settings"]["seeds"]
    lines = [
        f"OV-Shapes benchmark ({len(seeds)} seed(s): {seeds}; device "
        f"{report['environment']['device']})",
        f"teacher zero-shot top-1   base {pct(t['mean']['top1_base'])}   "
        f"novel {pct(t['mean']['top1_novel'])}",
        "",
        f"{'method':<12} {'AP50 base':>12} {'AP50 novel':>12} {'AP50 all':>12} {'time':>8}",
    ]
    for name, m in report["methods"].items():
        mean, std = m["mean"], m["std"]
        secs = report["time_s"].get(name, 0.0)
        lines.append(
            f"{name:<12} {ap(mean['AP50_base'], std['AP50_base']):>12} "
            f"{ap(mean['AP50_novel'], std['AP50_novel']):>12} "
            f"{ap(mean['AP50'], std['AP50']):>12} {secs:>7.0f}s"
        )
    lines += _format_self_train(report.get("self_train"))
    mem = report["memory_mb"]
    cuda = "" if mem["cuda"] is None else f", CUDA peak {mem['cuda']:.0f} MiB"
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in report["time_s"].items() if k != "total")
    lines += [
        "",
        f"wall time {report['time_s']['total']:.0f}s ({stages})",
        f"peak RSS {mem['rss_self']:.0f} MiB (children {mem['rss_children']:.0f} MiB){cuda}",
    ]
    return "\n".join(lines)


def format_suite_report(report: dict) -> str:
    """A short human-readable table of a suite report: AP50 base / novel per world (mean over
    seeds) and the gain over ViLD-text, then the means over worlds."""

    def ap(x):
        return "  n/a" if x is None else f"{x:5.1f}"

    def gain(x):
        return "    " if x is None else f"{x:+5.1f}"

    seeds = report["settings"]["seeds"]
    names = [n for e in report["worlds"].values() for n in e["methods"]] + list(report["methods"])
    w = max([14, *(len(n) for n in names)])  # the method column fits the longest name
    lines = [
        f"OV-Shapes suite ({len(report['worlds'])} worlds, {len(seeds)} seed(s): {seeds})",
        "",
        f"{'world':<10} {'method':<{w}} {'base':>6} {'novel':>6} {'gain base':>10} "
        f"{'gain novel':>10}",
    ]
    key = f"gain_over_{BASELINE}"
    for world, entry in report["worlds"].items():
        for name, m in entry["methods"].items():
            g = entry.get(key, {}).get(name, {}).get("mean", {})
            lines.append(
                f"{world:<10} {name:<{w}} {ap(m['mean']['AP50_base']):>6} "
                f"{ap(m['mean']['AP50_novel']):>6} {gain(g.get('AP50_base')):>10} "
                f"{gain(g.get('AP50_novel')):>10}"
            )
    for name, m in report["methods"].items():
        g = m.get(key, {}).get("mean", {})
        lines.append(
            f"{'mean':<10} {name:<{w}} {ap(m['mean_over_worlds']['AP50_base']):>6} "
            f"{ap(m['mean_over_worlds']['AP50_novel']):>6} {gain(g.get('AP50_base')):>10} "
            f"{gain(g.get('AP50_novel')):>10}"
        )
    lines += ["", *_format_choice(report.get("method_choice"))]
    lines += _format_suite_self_train(report.get("self_train"))
    stages = ", ".join(
        f"{k} {v:.0f}s" for k, v in report["time_s"].items() if k != "total" and v is not None
    )
    lines += ["", f"wall time {report['time_s']['total']:.0f}s ({stages})"]
    return "\n".join(lines)


def _ap_pair(m: dict | None) -> str:
    if not m:
        return "n/a"
    return " / ".join("n/a" if m.get(k) is None else f"{m[k]:.1f}" for k in GAIN_KEYS)


def _gain_pair(m: dict | None) -> str:
    if not m:
        return ""
    return " / ".join("n/a" if m.get(k) is None else f"{m[k]:+.1f}" for k in GAIN_KEYS)


def _format_self_train(section: dict | None) -> list[str]:
    """Self-training rows of a report: AP50 base / novel per round, student and control."""
    if not section:
        return []
    lines = ["", f"self-training ({section['iterations']} iterations per round; AP50 base / novel)"]
    for name, m in section["methods"].items():
        lines.append(f"  {name:<14} teacher {_ap_pair(m['teacher']['mean'])}")
        for r, e in m["rounds"].items():
            lines.append(
                f"  {'':<14} round {r}: {_ap_pair(e['student']['mean'])} "
                f"({_gain_pair(e['gain_over_teacher'])} over the teacher"
                + (
                    f", {_gain_pair(e['gain_over_control'])} over the gold-only control "
                    f"{_ap_pair(e['control']['mean'])})"
                    if "control" in e
                    else ")"
                )
            )
    return lines


def _format_suite_self_train(section: dict | None) -> list[str]:
    """Self-training over the suite: per method and round, the mean over worlds."""
    if not section:
        return []
    lines = ["", "self-training, mean over worlds (AP50 base / novel):"]
    for name, m in section.items():
        for r, e in m["mean_over_worlds"].items():
            control = (
                f"; over the control {_gain_pair(e['gain_over_control'])} "
                f"(smallest {_gain_pair(e['min_gain_over_control'])})"
                if "gain_over_control" in e
                else ""
            )
            lines.append(
                f"  {name:<14} round {r}, {e['worlds']} world(s): "
                f"{_ap_pair(e.get('student'))} ({_gain_pair(e.get('gain_over_teacher'))} over "
                f"the teacher{control})"
            )
    return lines


def _format_choice(choice: dict | None) -> list[str]:
    """The method choice in a few lines: per candidate, then the verdict."""
    if not choice:
        return []
    lines = [f"method choice ({choice['rule']}):"]
    for name, c in choice["candidates"].items():
        verdict = "qualifies" if c["qualifies"] else "; ".join(c["failures"]) or "not run"
        gain = c["mean_novel_gain"]
        gain = "n/a" if gain is None else f"{gain:+.1f}"
        lines.append(f"  {name:<14} mean novel gain {gain:>5}  {verdict}")
    if choice["complete"]:
        lines.append(f"  recommended: {choice['recommended'] or 'none qualifies'}")
    else:
        lines.append(
            f"  incomplete (leader so far: {choice['leader'] or 'none'}); missing: "
            + ", ".join(choice["missing"])
        )
    if choice["target"] is not None:
        where = "every world" if choice["complete"] else "the worlds so far"
        lines.append(f"  issue target (leader, {where}) met: {choice['target']['met']}")
    return lines


def _setup_logging(quiet: bool) -> None:
    """Progress of ovdet and detectron2 to stderr (stdout carries the report)."""
    if not quiet:
        log_progress_to_stderr()


def _merge(args: argparse.Namespace) -> int:
    """``--merge``: one suite report from several; bad files are refused by name."""
    reports = []
    for path in args.merge:
        try:
            with open(path, encoding="utf-8") as f:
                reports.append(json.load(f))
        except (OSError, json.JSONDecodeError) as e:
            print(f"ovdet bench ov-shapes --merge: cannot read {path}: {e}", file=sys.stderr)
            return 2
    try:
        report = merge_suite_reports(reports, names=args.merge)
    except (ValueError, KeyError, TypeError) as e:
        print(f"ovdet bench ov-shapes --merge: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    write_json(out / SUITE_REPORT, report, indent=2)
    print(json.dumps(report, indent=2) if args.json else format_suite_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``ovdet bench ov-shapes``: see the module docstring and ``--help``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.data is None and (args.novel or args.captions):
        print("ovdet bench ov-shapes: --novel / --captions need --data DIR", file=sys.stderr)
        return 2
    if args.data is not None and not args.novel:
        print("ovdet bench ov-shapes: --data needs --novel NAMES", file=sys.stderr)
        return 2
    if args.merge:
        return _merge(args)
    if args.suite is not None and (args.data is not None or args.export_demo is not None):
        print(
            "ovdet bench ov-shapes: --suite generates its worlds: not with --data or --export-demo",
            file=sys.stderr,
        )
        return 2
    _setup_logging(args.quiet)
    settings = BenchmarkSettings(
        out=args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=args.image_size,
        data_seed=args.data_seed,
        seeds=args.seeds,
        teacher_epochs=args.teacher_epochs,
        teacher_steps=args.teacher_steps,
        teacher_batch_size=args.teacher_batch_size,
        det_iters=args.det_iters,
        det_batch_size=args.det_batch_size,
        methods=args.methods,
        device=args.device,
        data=args.data,
        novel=args.novel,
        captions=args.captions,
        num_workers=args.num_workers,
        threads=args.threads,
        export_demo=args.export_demo,
        export_method=args.export_method,
        export_command=shlex.join(["ovdet", "bench", "ov-shapes", *argv]),
        progress=not args.quiet,
        self_train=args.self_train,
        self_train_rounds=args.self_train_rounds,
        self_train_iters=args.self_train_iters,
        self_train_seed=args.self_train_seed,
        self_train_control=not args.no_control,
    )
    log = (lambda msg: None) if args.quiet else logging.getLogger("ovdet.bench").info
    if args.suite is not None:
        report = run_suite(settings, args.suite, log=log)
        text = format_suite_report(report)
    else:
        report = run_benchmark(settings, log=log)
        text = format_report(report)
    print(json.dumps(report, indent=2) if args.json else text)
    return 0
