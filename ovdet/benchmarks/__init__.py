"""Benchmarks run by ``ovdet bench <name>``.

ovdet bench ov-shapes [options]     see ``ovdet bench ov-shapes --help``
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["BENCHMARKS", "main"]

# name -> (module with main(argv), one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ov-shapes": (
        "ovdet.benchmarks.ov_shapes.cli",
        "synthetic open-vocabulary benchmark: teacher, ViLD-text, oracle (AP50 base/novel); "
        "--suite: several worlds",
    ),
}


def _usage() -> str:
    lines = ["usage: ovdet bench <benchmark> [options]", "", "benchmarks:"]
    lines += [f"  {name}  {help_}" for name, (_, help_) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``ovdet bench``: dispatch to a benchmark's ``main(argv)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"ovdet bench: unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    return int(module.main(rest) or 0)
