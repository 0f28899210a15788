#!/usr/bin/env python3
"""Speed of box-prompted SAM: batched decoding (:class:`ovdet.modeling.sam.BoxPromptedSAM`)
vs a ``SamPredictor.predict`` loop box by box; prints one JSON object.

    python tools/benchmark_sam.py                         tiny random SAM, CPU (+ CUDA if any)
    python tools/benchmark_sam.py --sam vit_b:sam_vit_b_01ec64.pth --device cuda
    python tools/benchmark_sam.py --boxes 1,10,100 --chunk-sizes 1,8,32,100 --repeats 5

For N boxes of one image (random boxes inside it, fixed seed), the median seconds of:
``batched`` (all N boxes through the prompt encoder + mask decoder in chunks, masks
upsampled to the image) and ``loop`` (``SamPredictor.predict(box=..., multimask_output=False)``
once per box), each with the image encoder excluded (embedding computed beforehand) and
included (``..._with_encoder``). ``ratio_batched_max_vs_1`` is the batched time of the most
boxes over that of 1 box, encoder excluded (target <= 2 for 100 boxes on a GPU).

Peak memory of decoding the most boxes, per chunk size: on CUDA
``torch.cuda.max_memory_allocated`` above what was allocated before; on the CPU the peak
resident memory (``/proc/self/statm``, sampled every 0.2 ms while decoding) above the
resident memory before (torch's CPU tensors are not seen by ``tracemalloc``); each chunk
size in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "assets" / "coco_sample" / "images" / "000000000089.jpg"


def _sam(spec: str | None):
    from ovdet.modeling.sam import build_small_sam, sam_from_spec

    if spec is None:
        torch.manual_seed(0)
        return build_small_sam(), "small (random weights)"
    return sam_from_spec(spec)[0], spec


def _image() -> np.ndarray:
    from PIL import Image

    if PHOTO.is_file():
        return np.asarray(Image.open(PHOTO).convert("RGB"))
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def _boxes(n: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 1, (n, 2)) * [width * 0.8, height * 0.8]
    wh = rng.uniform(0.05, 0.2, (n, 2)) * [width, height]
    return np.concatenate([xy, xy + wh], axis=1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _speed(sam, device: torch.device, counts: list[int], repeats: int, chunk: int) -> dict:
    from segment_anything import SamPredictor

    from ovdet.modeling.sam import BoxPromptedSAM

    image = _image()
    h, w = image.shape[:2]
    boxed = BoxPromptedSAM(sam, device=device, chunk_size=chunk)
    predictor = SamPredictor(boxed.sam)
    embedding = boxed.embed(image)
    predictor.set_image(image)
    encoder = _median_seconds(lambda: boxed.embed(image), device, repeats)
    rows = []
    for n in counts:
        boxes = _boxes(n, h, w)

        def loop(boxes=boxes):
            for box in boxes:
                predictor.predict(box=box, multimask_output=False)

        batched = _median_seconds(
            lambda b=boxes: boxed.predict_embedded(embedding, b), device, repeats
        )
        looped = _median_seconds(loop, device, repeats)
        rows.append(
            {
                "boxes": n,
                "batched_s": round(batched, 5),
                "loop_s": round(looped, 5),
                "speedup": round(looped / batched, 2),
                "batched_with_encoder_s": round(batched + encoder, 5),
                "loop_with_encoder_s": round(looped + encoder, 5),
            }
        )
    return {
        "device": str(device),
        "fp16_autocast": device.type == "cuda" and boxed.fp16 is not False,
        "image": [h, w],
        "chunk_size": chunk,
        "encoder_s": round(encoder, 5),
        "decode": rows,
        f"ratio_batched_{counts[-1]}_vs_1": round(rows[-1]["batched_s"] / rows[0]["batched_s"], 2),
    }


def _memory_probe(sam, device: torch.device, n: int, chunk: int) -> float:
    """MiB of extra peak memory to decode ``n`` boxes with ``chunk_size=chunk``."""
    from ovdet.modeling.sam import BoxPromptedSAM

    image = _image()
    boxed = BoxPromptedSAM(sam, device=device, chunk_size=chunk)
    embedding = boxed.embed(image)
    boxes = _boxes(n, *image.shape[:2])
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        boxed.predict_embedded(embedding, boxes)
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return _rss_peak_during(lambda: boxed.predict_embedded(embedding, boxes))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _rss_peak_during(fn) -> float:
    """MiB of resident memory above the start's, at its peak while ``fn`` runs (sampled
    every 0.2 ms by a thread: torch's kernels release the GIL)."""
    import threading

    before, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.0002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return (max(peak[0], _rss()) - before) / 2**20


def _memory(args, device: torch.device, n: int) -> dict[str, float]:
    out = {}
    for chunk in args.chunk_sizes:
        cmd = [sys.executable, __file__, "--probe", f"{device}:{n}:{chunk}"]
        cmd += ["--threads", str(args.threads)] + (["--sam", args.sam] if args.sam else [])
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[str(chunk)] = round(float(done.stdout.strip().splitlines()[-1]), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sam", help="TYPE:CHECKPOINT or a checkpoint (default: tiny random SAM)")
    p.add_argument("--device", default="all", help="cpu | cuda | all (cpu, and cuda if any)")
    p.add_argument("--boxes", default="1,10,100", help="box counts, comma-separated")
    p.add_argument("--chunk-sizes", default="1,8,32,100", help="for the memory probe")
    p.add_argument("--chunk-size", type=int, default=32, help="for the speed runs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    p.add_argument("--probe", help=argparse.SUPPRESS)  # DEVICE:N:CHUNK, internal
    args = p.parse_args(argv)
    args.chunk_sizes = [int(c) for c in args.chunk_sizes.split(",")]
    torch.set_num_threads(args.threads)
    sam, label = _sam(args.sam)
    if args.probe:
        device, n, chunk = args.probe.rsplit(":", 2)
        print(_memory_probe(sam, torch.device(device), int(n), int(chunk)))
        return 0
    counts = sorted(int(c) for c in args.boxes.split(","))
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    report = {"sam": label, "threads": args.threads, "repeats": args.repeats, "runs": []}
    for name in devices:
        device = torch.device(name)
        run = _speed(sam, device, counts, args.repeats, args.chunk_size)
        run[f"peak_memory_mib_{counts[-1]}_boxes_by_chunk_size"] = _memory(args, device, counts[-1])
        report["runs"].append(run)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
