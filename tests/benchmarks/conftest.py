"""Shared settings of the OV-Shapes benchmark tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_bench():
    """BenchmarkSettings keyword arguments of a tiny run (seconds on CPU); copy to change."""
    return dict(
        num_train=16,
        num_val=8,
        image_size=96,
        teacher_steps=5,
        teacher_batch_size=32,
        det_iters=4,
        det_batch_size=2,
        num_workers=0,
        threads=1,
        progress=False,
    )
