"""Under torch.distributed the ranks are the shards and rank 0 merges (2 CPU processes, gloo
over a file: no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ovdet.pseudo_label import run_pseudo_label

from .conftest import FakeTeacher, write_images

RANK = """
import importlib.util, json, sys
import torch.distributed as dist
rank, world, init, conftest, images, out = sys.argv[1:]
dist.init_process_group("gloo", init_method="file://" + init, rank=int(rank),
                        world_size=int(world))
spec = importlib.util.spec_from_file_location("pl_conftest", conftest)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from ovdet.pseudo_label import run_pseudo_label
summary = run_pseudo_label(teacher=module.FakeTeacher(), inputs=[images], output=out,
                           score_thresh=0.1, progress=False)
dist.destroy_process_group()
print(json.dumps(summary))
"""


def test_ranks_are_shards_and_rank_0_merges(tmp_path):
    images = tmp_path / "img"
    write_images(images, 5)
    one = tmp_path / "one"
    run_pseudo_label(
        teacher=FakeTeacher(), inputs=[str(images)], output=one, score_thresh=0.1, progress=False
    )
    out = tmp_path / "dist"
    conftest = Path(__file__).with_name("conftest.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RANK,
                str(rank),
                "2",
                str(tmp_path / "init"),
                str(conftest),
                str(images),
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for rank in (0, 1)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    summaries = [json.loads(r[0].strip().splitlines()[-1]) for r in results]
    assert [s["shard"] for s in summaries] == ["0/2", "1/2"]
    assert summaries[0]["images"] == 5 and summaries[1]["images"] == 2  # rank 1: its shard
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0", "1"]
    for name in ("pseudo_labels.json", "summary.json", "errors.json"):
        assert (out / name).read_bytes() == (one / name).read_bytes()
