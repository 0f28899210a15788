"""The OV-Shapes benchmark: does the teacher's language let a detector find unseen classes?

Python API::

    from ovdet.benchmarks.ov_shapes import BenchmarkSettings, run_benchmark
    report = run_benchmark(BenchmarkSettings(out="runs/ovs", seeds=(0, 1)))
    report["methods"]["vild_text"]["mean"]["AP50_novel"]

CLI: ``ovdet bench ov-shapes`` (see :mod:`ovdet.benchmarks.ov_shapes.cli`).
"""

from ovdet.benchmarks.ov_shapes.methods import (
    BUILTIN_METHODS,
    MethodContext,
    MethodSpec,
    resolve_methods,
)
from ovdet.benchmarks.ov_shapes.runner import BenchmarkSettings, run_benchmark, summarise

__all__ = [
    "BUILTIN_METHODS",
    "BenchmarkSettings",
    "MethodContext",
    "MethodSpec",
    "resolve_methods",
    "run_benchmark",
    "summarise",
]
