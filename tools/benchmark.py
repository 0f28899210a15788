#!/usr/bin/env python3
"""Inference speed of OVRCNN R50-FPN against vanilla detectron2 Faster R-CNN R50-FPN
(and, with ``--grounding``, Grounding R-CNN R50-FPN and transformers' Grounding DINO).

Both models are built in the same process from ``configs/common/models/ov_rcnn_fpn.py``
(mask head removed, so both are Faster R-CNN): the vanilla one swaps the OV box predictor for
detectron2's ``FastRCNNOutputLayers`` (80 classes, class-specific boxes) and the meta-arch for
``GeneralizedRCNN``; everything else (backbone, RPN, box head, test thresholds) is shared.
Weights are random: the timing of a forward pass does not depend on them, except through
the number of boxes passing the score threshold; ``--score-thresh 0`` measures the worst case.

Also measured: switching the vocabulary at run time from cached embeddings
(``model.set_vocabulary(tensor)``) and from names already encoded once (the model's cache).

    python tools/benchmark.py --json                         # full run (CUDA when present)
    python tools/benchmark.py --json --iters 2 --batch-sizes 1 --vocab-sizes 80,1203

Prints JSON (``--json``) with per-configuration milliseconds per image and the ratios to
vanilla at each batch size.

``--grounding`` adds Grounding R-CNN R50-FPN (``ovdet.methods.grounding``: the same backbone,
RPN and box head, K=2 fusion layers, a random BERT-base as token encoder whose tokenizer is a
word-level vocabulary of the class names, so no download) at every vocabulary size, and
transformers' ``GroundingDinoForObjectDetection`` (its default Swin-T config, random weights,
random token ids) with 1 prompt and with ``--dino-prompts`` prompts (31: GLIP's chunked LVIS
evaluation, each prompt rerunning the whole model). Vocabularies: COCO's 80 names, LVIS's 1203,
and 10,000 names made from LVIS's (``"<name> <k>"``). Encoding a vocabulary is cached per
vocabulary (as in use) and not timed.

    python tools/benchmark.py --json --grounding --batch-sizes 1 --height 400 --width 667
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time

import torch

import ovdet  # noqa: F401  (compat layer before detectron2)

# isort: split

from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import ShapeSpec
from detectron2.modeling import GeneralizedRCNN
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads import FastRCNNOutputLayers, StandardROIHeads

CONFIG = "configs/common/models/ov_rcnn_fpn.py"


def _ov_config(root: str, embed_dim: int, score_thresh: float):
    cfg = LazyConfig.load(f"{root}/{CONFIG}")
    model = cfg.model
    model.roi_heads.box_predictor.classifier.train_embeddings = torch.nn.functional.normalize(
        torch.randn(80, embed_dim), dim=1
    )
    model.roi_heads.box_predictor.test_score_thresh = score_thresh
    for key in ("mask_in_features", "mask_pooler", "mask_head"):
        model.roi_heads[key] = None
    return model


def _vanilla_config(ov_model, score_thresh: float):
    model = copy.deepcopy(ov_model)
    model._target_ = GeneralizedRCNN
    for key in ("text_encoder", "vocabulary", "templates"):
        model.pop(key, None)
    roi = model.roi_heads
    roi._target_ = StandardROIHeads
    roi.num_classes = 80
    roi.box_predictor = L(FastRCNNOutputLayers)(
        input_shape=ShapeSpec(channels=1024),
        box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
        num_classes=80,
        test_score_thresh=score_thresh,
        test_nms_thresh=0.5,
        test_topk_per_image=100,
    )
    return model


@torch.no_grad()
def _realistic_proposals(model, height: int, width: int, device) -> float:
    """Zero the RPN's anchor-delta layer, so that an untrained RPN proposes its anchors (random
    ones regress to near-identical boxes that NMS cuts to a handful, which would leave the ROI
    heads idle), and return the proposals per image it then gives (the test-time top-k after
    NMS, as a trained RPN). The other models copy this RPN."""
    deltas = model.proposal_generator.rpn_head.anchor_deltas
    torch.nn.init.zeros_(deltas.weight)
    torch.nn.init.zeros_(deltas.bias)
    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, height, width), generator=gen).float().to(device)
    images = model.preprocess_image([{"image": image}])
    proposals, _ = model.proposal_generator(images, model.backbone(images.tensor), None)
    return float(len(proposals[0]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_model(model, batch: int, height: int, width: int, iters: int, warmup: int, device):
    """Median milliseconds per image over ``iters`` timed forward passes."""
    gen = torch.Generator().manual_seed(0)
    inputs = [
        {
            "image": torch.randint(0, 256, (3, height, width), generator=gen)
            .to(torch.float32)
            .to(device),
            "height": height,
            "width": width,
        }
        for _ in range(batch)
    ]
    for _ in range(warmup):
        model(inputs)
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        model(inputs)
        _sync(device)
        times.append((time.perf_counter() - start) * 1000.0 / batch)
    times.sort()
    return times[len(times) // 2]


def vocabulary_switch_ms(model, sizes: list[int], embed_dim: int, repeats: int = 20) -> dict:
    """Time ``set_vocabulary`` from tensors (cached embeddings), per vocabulary size."""
    out = {}
    for size in sizes:
        emb = torch.nn.functional.normalize(torch.randn(size, embed_dim), dim=1)
        names = [f"class {i}" for i in range(size)]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.set_vocabulary(emb, names_for_embeddings=names)
            times.append((time.perf_counter() - start) * 1000.0)
        times.sort()
        out[str(size)] = round(times[len(times) // 2], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("--device", default=None, help="cuda | cpu (default: cuda when present)")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--vocab-sizes", default="80,1203,10000")
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--width", type=int, default=1333)
    p.add_argument("--embed-dim", type=int, default=512)
    p.add_argument("--score-thresh", type=float, default=0.05)
    p.add_argument("--root", default=".", help="repository root (for the model config)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--grounding", action="store_true", help="add Grounding R-CNN and DINO")
    p.add_argument(
        "--profile-chunks",
        action="store_true",
        help="with --grounding: per vocabulary size, the backbone's and each chunk's time",
    )
    p.add_argument("--dino-prompts", default="1,31", help="Grounding DINO prompts per image")
    p.add_argument("--dino-text-len", type=int, default=None, help="tokens per DINO prompt")
    p.add_argument("--dino-iters", type=int, default=1, help="timed passes of each DINO row")
    p.add_argument(
        "--chunk-batches",
        default="",
        help="with --grounding: comma-separated test_chunk_batch values to time (default: the "
        "model's own)",
    )
    p.add_argument(
        "--fusion-attention",
        default="fused",
        help="with --grounding: comma-separated fusion attention modes to time side by side "
        "(fused, explicit; the targets use the first)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    vocab_sizes = [int(v) for v in args.vocab_sizes.split(",")]
    torch.manual_seed(0)
    ov_cfg = _ov_config(args.root, args.embed_dim, args.score_thresh)
    vanilla = instantiate(_vanilla_config(ov_cfg, args.score_thresh)).to(device).eval()
    proposals = _realistic_proposals(vanilla, args.height, args.width, device)
    ov = instantiate(ov_cfg).to(device).eval()
    # same weights where the architectures agree, so only the box predictor differs
    shared = {
        k: v
        for k, v in vanilla.state_dict().items()
        if not k.startswith("roi_heads.box_predictor.")
    }
    ov.load_state_dict(shared, strict=False)

    rows = []
    for batch in batch_sizes:
        ms = time_model(vanilla, batch, args.height, args.width, args.iters, args.warmup, device)
        rows.append(
            {
                "model": "vanilla_faster_rcnn_R50_FPN",
                "classes": 80,
                "batch": batch,
                "ms_per_image": round(ms, 2),
            }
        )
        if not args.json:
            print(rows[-1], file=sys.stderr)
        for size in vocab_sizes:
            emb = torch.nn.functional.normalize(torch.randn(size, args.embed_dim), dim=1)
            ov.set_vocabulary(emb)
            ms = time_model(ov, batch, args.height, args.width, args.iters, args.warmup, device)
            rows.append(
                {
                    "model": "ovrcnn_R50_FPN",
                    "classes": size,
                    "batch": batch,
                    "ms_per_image": round(ms, 2),
                }
            )
            if not args.json:
                print(rows[-1], file=sys.stderr)

    extra = {}
    if args.grounding:
        from grounding_speed import time_grounding

        grows, extra = time_grounding(
            args, ov_cfg, vanilla, batch_sizes, vocab_sizes, device, time_model
        )
        rows += grows

    ratios = {}
    for batch in batch_sizes:
        base = next(
            r["ms_per_image"]
            for r in rows
            if r["batch"] == batch and r["classes"] == 80 and r["model"].startswith("vanilla")
        )
        for r in rows:
            if r["batch"] == batch and r["model"].startswith("ovrcnn"):
                ratios[f"batch{batch}_classes{r['classes']}"] = round(r["ms_per_image"] / base, 3)

    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "image_size": [args.height, args.width],
        "iters": args.iters,
        "score_thresh": args.score_thresh,
        "proposals_per_image": proposals,
        "results": rows,
        "ratio_vs_vanilla": ratios,
        "vocabulary_switch_ms": vocabulary_switch_ms(ov, vocab_sizes, args.embed_dim),
        "target": "ratio <= 1.10 at 1203 classes",
        **extra,
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
