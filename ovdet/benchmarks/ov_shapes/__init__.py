"""The OV-Shapes benchmark: does the teacher's language let a detector find unseen classes?

Python API::

    from ovdet.benchmarks.ov_shapes import BenchmarkSettings, run_benchmark
    report = run_benchmark(BenchmarkSettings(out="runs/ovs", seeds=(0, 1)))
    report["methods"]["vild_text"]["mean"]["AP50_novel"]

    from ovdet.benchmarks.ov_shapes import run_suite       # several worlds, one report
    settings = BenchmarkSettings(out="runs/suite", seeds=(0, 1), methods=["vild_text", "rkd"])
    suite = run_suite(settings, ["standard"])
    suite["methods"]["rkd"]["gain_over_vild_text"]["per_world"]

CLI: ``ovdet bench ov-shapes [--suite default,textures,palette,photo]`` (see
:mod:`ovdet.benchmarks.ov_shapes.cli`).
"""

from ovdet.benchmarks.ov_shapes.methods import (
    BUILTIN_METHODS,
    MethodContext,
    MethodSpec,
    resolve_methods,
)
from ovdet.benchmarks.ov_shapes.runner import BenchmarkSettings, run_benchmark, summarise
from ovdet.benchmarks.ov_shapes.suite import run_suite

__all__ = [
    "BUILTIN_METHODS",
    "BenchmarkSettings",
    "MethodContext",
    "MethodSpec",
    "resolve_methods",
    "run_benchmark",
    "run_suite",
    "summarise",
]
