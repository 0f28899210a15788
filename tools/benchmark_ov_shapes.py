#!/usr/bin/env python3
"""The OV-Shapes benchmark; the same as ``ovdet bench ov-shapes`` (all options identical).

    python tools/benchmark_ov_shapes.py --json                  default size, <= 30 min on 2 CPUs
    python tools/benchmark_ov_shapes.py --json --seeds 0,1,2
    python tools/benchmark_ov_shapes.py --data DIR --novel "cat,dog" --captions DIR/caps.json
    python tools/benchmark_ov_shapes.py --seeds 0 --methods vild_text,rkd_ensemble
        --export-method rkd_ensemble --export-demo ovdet/assets/models/ov-shapes-rkd-ensemble
                                         (the shipped default model, one command line)

See ``ovdet.benchmarks.ov_shapes`` for the stages and the report's fields.
"""

from __future__ import annotations

import sys

from ovdet.benchmarks.ov_shapes.cli import main

if __name__ == "__main__":
    sys.exit(main())
