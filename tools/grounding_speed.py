"""Grounding R-CNN and Grounding DINO rows of tools/benchmark.py (``--grounding``).

Nothing is downloaded: the BERT-base token encoder has random weights and a word-level
vocabulary written from the class names; Grounding DINO is transformers' default config with
random weights and random token ids.
"""

from __future__ import annotations

import copy
import re
import tempfile
import time
from pathlib import Path

import torch


def vocabulary(size: int) -> list[str]:
    """COCO's 80 names, LVIS's first ``size`` names, or ``"<lvis name> <k>"`` beyond 1203."""
    from ovdet.text import resolve_vocabulary

    if size == 80:
        return resolve_vocabulary("coco")
    lvis = resolve_vocabulary("lvis")
    if size <= len(lvis):
        return lvis[:size]
    return [f"{lvis[i % len(lvis)]} {i // len(lvis)}" for i in range(size)]


def random_bert_encoder(sizes: list[int], device):
    """HFTokenEncoder over a random BERT-base, tokenizer = the names' words (no pieces)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from ovdet.text import HFTokenEncoder

    words = set()
    for size in sizes + [80, 1203]:
        for name in vocabulary(size):
            words.update(re.findall(r"\w+|[^\w\s]", name.lower()))
    folder = Path(tempfile.mkdtemp(prefix="bench_bert_"))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join(special + sorted(words | {"."})) + "\n")
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(words) + 6)).eval()
    return HFTokenEncoder("random-bert-base", model=bert, tokenizer=tokenizer, device=device)


GROUNDING_CONFIG = "configs/ov_coco/grounding_rcnn_r50_fpn_1x.py"
# the detector settings the speed rows take from the OV-COCO config (not its data or encoder)
FUSION_KEYS = (
    "text_dim",
    "fusion_layers",
    "fusion_in_features",
    "fusion_embed_dim",
    "fusion_heads",
    "fusion_ffn_dim",
)


def grounding_settings(root: str) -> dict:
    """Fusion and token widths of ``GROUNDING_CONFIG`` (the R50-FPN grounding detector)."""
    from detectron2.config import LazyConfig

    model = LazyConfig.load(f"{root}/{GROUNDING_CONFIG}").model
    out = {k: model[k] for k in FUSION_KEYS if k in model}
    out["embed_dim"] = model.roi_heads.box_predictor.embed_dim
    if out.get("fusion_in_features") is not None:
        out["fusion_in_features"] = list(out["fusion_in_features"])
    return out


def grounding_model(ov_cfg, vanilla, encoder, device, settings: dict):
    from detectron2.config import instantiate

    from ovdet.methods.grounding import grounding_model as to_grounding

    cfg = to_grounding(
        copy.deepcopy(ov_cfg),
        token_encoder=encoder,
        train_vocabulary=vocabulary(80),
        **settings,
    )
    model = instantiate(cfg).to(device).eval()
    shared = {
        k: v
        for k, v in vanilla.state_dict().items()
        if not k.startswith("roi_heads.box_predictor.")
    }
    model.load_state_dict(shared, strict=False)
    return model


def set_fusion_attention(model, mode: str) -> None:
    """Set every fusion layer's attention mode (``BiAttentionLayer.attention``)."""
    from ovdet.methods.grounding.fusion import ATTENTION_MODES

    if mode not in ATTENTION_MODES:
        raise SystemExit(f"--fusion-attention: {mode!r} is not one of {ATTENTION_MODES}")
    for layer in model.fusion.layers:
        layer.attention = mode


def fusion_attention(model) -> str | None:
    """The fusion layers' attention mode (None: no fusion)."""
    layers = model.fusion.layers
    return layers[0].attention if len(layers) else None


@torch.no_grad()
def time_dino(prompts: int, text_len: int, height: int, width: int, iters: int, device) -> float:
    """Milliseconds per image of Grounding DINO over ``prompts`` forward passes (median)."""
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(GroundingDinoConfig()).to(device).eval()
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(1, 3, height, width, generator=gen).to(device)
    ids = torch.randint(1000, 30000, (1, text_len), generator=gen).to(device)
    mask = torch.ones_like(ids)
    model(pixel_values=pixels, input_ids=ids, attention_mask=mask)  # warm-up
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        for _ in range(prompts):
            model(pixel_values=pixels, input_ids=ids, attention_mask=mask)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return times[len(times) // 2]


@torch.no_grad()
def chunk_profile(model, height: int, width: int) -> dict:
    """Where one image's time goes with the model's current vocabulary: the backbone once,
    then per prompt chunk the fusion, the RPN and the ROI heads (milliseconds, one pass, the
    same reuse as ``GroundingRCNN.inference``)."""
    import dataclasses

    from ovdet.methods.grounding.chunks import reuse_unfused_rpn_levels

    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, height, width), generator=gen).float().to(model.device)
    images = model.preprocess_image([{"image": image, "height": height, "width": width}])
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)

    def timed(fn):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        return out, round((time.perf_counter() - start) * 1000.0, 1)

    features, backbone_ms = timed(lambda: model.backbone(images.tensor))
    cache: dict = {}
    chunks = []
    with reuse_unfused_rpn_levels(model.proposal_generator.rpn_head, features):
        for prompt in model.vocabulary_prompts():
            (fused, text), fusion_ms = timed(lambda p=prompt: model.fuse(features, p, cache=cache))
            (proposals, _), rpn_ms = timed(
                lambda f=fused: model.proposal_generator(images, f, None)
            )
            text = dataclasses.replace(text, counts=[len(p) for p in proposals])
            _, roi_ms = timed(
                lambda f=fused, p=proposals, t=text: model.roi_heads(images, f, p, None, text=t)
            )
            chunks.append(
                {
                    "tokens": int(prompt.num_tokens),
                    "fusion_ms": fusion_ms,
                    "rpn_ms": rpn_ms,
                    "roi_heads_ms": roi_ms,
                }
            )
    total = {
        k: round(sum(c[k] for c in chunks), 1) for k in ("fusion_ms", "rpn_ms", "roi_heads_ms")
    }
    return {"backbone_ms": backbone_ms, "chunks": chunks, "chunks_total": total}


def time_grounding(args, ov_cfg, vanilla, batch_sizes, vocab_sizes, device, time_model):
    """Rows for Grounding R-CNN (every batch and vocabulary size) and Grounding DINO (batch 1),
    and the summary ratios."""
    from ovdet.methods.grounding import split_into_prompts

    encoder = random_bert_encoder(vocab_sizes, device)
    settings = grounding_settings(args.root)
    model = grounding_model(ov_cfg, vanilla, encoder, device, settings)
    default_chunk_batch = model.chunk_batch  # what the model runs with on this device
    chunk_batches = [int(c) for c in args.chunk_batches.split(",") if c] or [default_chunk_batch]
    modes = [m for m in args.fusion_attention.split(",") if m]
    if not modes:
        raise SystemExit("--fusion-attention: give at least one mode (fused, explicit)")
    rows, chunks = [], {}
    for mode in modes:
        set_fusion_attention(model, mode)
        resolved = fusion_attention(model)
        for batch in batch_sizes:
            for size in vocab_sizes:
                model.set_vocabulary(vocabulary(size))
                chunks[str(size)] = len(model.vocabulary_prompts())  # encoded once, cached
                timed = set()
                for chunk_batch in chunk_batches:
                    effective = min(chunk_batch, chunks[str(size)])
                    if effective in timed:
                        continue  # e.g. one prompt: every chunk batch is the same pass
                    timed.add(effective)
                    model.test_chunk_batch = chunk_batch
                    ms = time_model(
                        model, batch, args.height, args.width, args.iters, args.warmup, device
                    )
                    rows.append(
                        {
                            "model": "grounding_rcnn_R50_FPN",
                            "classes": size,
                            "batch": batch,
                            "prompts": chunks[str(size)],
                            "chunk_batch": effective,
                            "fusion_attention": resolved,
                            "ms_per_image": round(ms, 2),
                        }
                    )
                    if not args.json:
                        print(rows[-1], flush=True)
    set_fusion_attention(model, modes[0])
    target_attention = fusion_attention(model)
    model.test_chunk_batch = None
    profiles = {}
    if args.profile_chunks:  # each chunk on its own, for every attention mode timed
        for mode in modes:
            set_fusion_attention(model, mode)
            key = "grounding_chunk_profile" + ("" if mode == modes[0] else f"_{mode}")
            profiles[key] = {}
            for size in vocab_sizes:
                model.set_vocabulary(vocabulary(size))
                profiles[key][str(size)] = chunk_profile(model, args.height, args.width)
        set_fusion_attention(model, modes[0])
    glip_chunk = split_into_prompts(vocabulary(1203), encoder, max_phrases=40)[0]
    text_len = args.dino_text_len or int(encoder.encode_prompt(glip_chunk).num_tokens)
    for prompts in [int(p) for p in args.dino_prompts.split(",") if p]:
        ms = time_dino(prompts, text_len, args.height, args.width, args.dino_iters, device)
        rows.append(
            {
                "model": "grounding_dino_swin_t (transformers)",
                "classes": None,
                "batch": 1,
                "prompts": prompts,
                "text_tokens": text_len,
                "ms_per_image": round(ms, 2),
            }
        )
        if not args.json:
            print(rows[-1], flush=True)

    def ms(model_name, **match):
        if model_name == "grounding_rcnn":  # the targets: the model's default chunk batch
            size = str(match["classes"])
            if size not in chunks:
                return None
            match.setdefault("chunk_batch", min(default_chunk_batch, chunks[size]))
            match.setdefault("fusion_attention", target_attention)
        for r in rows:
            if r["model"].startswith(model_name) and all(r.get(k) == v for k, v in match.items()):
                return r["ms_per_image"]
        return None

    ratios = {}
    g80, g1203 = (
        ms("grounding_rcnn", classes=80, batch=1),
        ms("grounding_rcnn", classes=1203, batch=1),
    )
    dino1, dino31 = ms("grounding_dino", prompts=1), ms("grounding_dino", prompts=31)
    if g80 is not None and g1203 is not None:
        ratios["grounding_1203_vs_own_80"] = round(g1203 / g80, 3)
    if dino31 is not None and g1203 is not None:
        ratios["dino_31_prompts_vs_grounding_1203"] = round(dino31 / g1203, 3)
    if dino1 is not None and g80 is not None:
        ratios["dino_1_prompt_vs_grounding_80"] = round(dino1 / g80, 3)
    extra = {
        "grounding": {
            "token_encoder": "random BERT-base, word-level vocabulary of the names",
            "settings": {"from": GROUNDING_CONFIG, **settings},
            "prompts_per_vocabulary": chunks,
            "default_chunk_batch": default_chunk_batch,
            "fusion_attention_targets": target_attention,
            "dino_text_tokens": text_len,
            "dino_text_tokens_note": "tokens of the first 40-name LVIS prompt (GLIP's chunk)",
        },
        "grounding_ratios": ratios,
        **profiles,
        "grounding_targets": "grounding 80 <= 1.5x OVRCNN 80; grounding 1203 <= 4x own 80; "
        "Grounding DINO 31 prompts >= 5x slower than grounding 1203",
    }
    return rows, extra
