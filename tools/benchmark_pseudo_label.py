"""Pseudo-labelling throughput beside ``ovdet detect`` (same images, model, batch size and
threshold, same process) and the labeller's memory over many images; prints JSON.

    python tools/benchmark_pseudo_label.py --images DIR --model ov-shapes-rkd-ensemble \
        [--limit 200] [--memory-images 5000] [--out WORK]

Throughput: ``ovdet detect`` (no drawings) and ``ovdet pseudo-label`` (no filters beyond the
threshold) each run once over the first ``--limit`` images; images/s of each and the
labeller's overhead in percent. Memory: ``pseudo-label`` over ``--memory-images`` images (the
folder's images hard-linked under new names when it has fewer, so the work per image is the
same), resident memory sampled every 0.5 s; growth = the largest RSS after the first 10 % of
the run minus the RSS at that point; ``rss_mb_by_tenth`` is the RSS at each tenth of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RSSSampler(threading.Thread):
    """RSS every ``period`` s; every ``report`` s a line on stderr with the images journalled
    so far (``journal``'s lines)."""

    def __init__(self, journal: Path, period: float = 0.5, report: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.period, self.report, self.journal = period, report, journal
        self.stop = threading.Event()

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop.is_set():
            now = time.perf_counter()
            self.samples.append((now, _rss_mb()))
            if now - last >= self.report:
                last = now
                done = self.journal.read_bytes().count(b"\n") if self.journal.is_file() else 0
                print(f"{done} images, RSS {self.samples[-1][1]:.0f} MB", file=sys.stderr)
            time.sleep(self.period)


def _images(folder: Path) -> list[Path]:
    exts = {".png", ".jpg", ".jpeg"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True)
    p.add_argument("--model", default="ov-shapes-rkd-ensemble")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--memory-images", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--score-thresh", type=float, default=0.3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/benchmark_pseudo_label")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args(argv)
    import torch

    from ovdet.detect import run_detect
    from ovdet.pseudo_label import run_pseudo_label

    out = Path(args.out)
    images = _images(Path(args.images))
    if not images:
        raise SystemExit(f"no images under {args.images}")
    report: dict = {"model": args.model, "batch_size": args.batch_size,
                    "score_thresh": args.score_thresh, "device": args.device,
                    "torch_threads": torch.get_num_threads()}  # fmt: skip
    common = dict(model=args.model, batch_size=args.batch_size, device=args.device,
                  score_thresh=args.score_thresh, progress=False, overwrite=True)  # fmt: skip
    if not args.skip_throughput:
        # throughput: the same images through both commands
        speed_dir = out / "speed_images"
        shutil.rmtree(speed_dir, ignore_errors=True)
        speed_dir.mkdir(parents=True)
        for i, src in enumerate(images[: args.limit]):
            os.symlink(src.resolve(), speed_dir / f"{i:06d}{src.suffix}")
        t = time.perf_counter()
        run_detect(inputs=[str(speed_dir)], output=out / "detect", vis=False, **common)
        detect_s = time.perf_counter() - t
        t = time.perf_counter()
        run_pseudo_label(inputs=[str(speed_dir)], output=out / "pseudo_label", **common)
        label_s = time.perf_counter() - t
        n = len(list(speed_dir.iterdir()))
        report["throughput"] = {
            "images": n,
            "detect_images_per_s": round(n / detect_s, 3),
            "pseudo_label_images_per_s": round(n / label_s, 3),
            "overhead_percent": round(100 * (label_s - detect_s) / detect_s, 1),
        }
    # memory over many images
    mem_dir = out / "memory_images"
    shutil.rmtree(mem_dir, ignore_errors=True)
    mem_dir.mkdir(parents=True)
    for i in range(args.memory_images):
        src = images[i % len(images)]
        os.link(src.resolve(), mem_dir / f"{i:06d}{src.suffix}")  # a new path, same bytes
    sampler = RSSSampler(out / "memory" / "labels.jsonl")
    sampler.start()
    t = time.perf_counter()
    result = run_pseudo_label(inputs=[str(mem_dir)], output=out / "memory", **common)
    total = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    warm = t + 0.1 * total
    after = [rss for ts, rss in sampler.samples if ts >= warm]
    at_warm = after[0] if after else _rss_mb()
    report["memory"] = {
        "images": result["images"],
        "seconds": round(total, 1),
        "rss_mb_at_10_percent": round(at_warm, 1),
        "rss_mb_max_after": round(max(after or [at_warm]), 1),
        "rss_mb_end": round(after[-1] if after else at_warm, 1),
        "growth_mb": round(max(after or [at_warm]) - at_warm, 1),
        "rss_mb_by_tenth": [
            round(next((r for ts, r in sampler.samples if ts >= t + k * total / 10), 0.0), 1)
            for k in range(1, 11)
        ],
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
