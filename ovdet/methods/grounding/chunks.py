"""Inference over a vocabulary split into prompt chunks: padding several prompts into one
batch, reusing the RPN on the FPN levels no prompt changes, and merging the chunks'
detections. Used by :class:`~ovdet.methods.grounding.meta_arch.GroundingRCNN`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from detectron2.layers import batched_nms
from detectron2.modeling.proposal_generator.rpn import StandardRPNHead
from detectron2.structures import Instances

from ovdet.text.token_encoder import TokenizedPrompt

__all__ = ["merge_detections", "pad_prompts", "reuse_unfused_rpn_levels"]


def merge_detections(parts: list[Instances], nms_thresh: float, topk: int) -> Instances:
    """One image's detections from several prompt chunks: per-class NMS over the union, then
    the ``topk`` highest scores (a single part is returned unchanged)."""
    if len(parts) == 1:
        return parts[0]
    merged = Instances.cat(parts)
    keep = batched_nms(merged.pred_boxes.tensor, merged.scores, merged.pred_classes, nms_thresh)
    keep = keep[merged.scores[keep].argsort(descending=True, stable=True)][:topk]
    return merged[keep]


def pad_prompts(prompts: Sequence[TokenizedPrompt]) -> tuple[torch.Tensor, torch.Tensor]:
    """(G, L, D) token features and (G, L) bool masks of G prompts padded to the longest
    (padding rows zero and masked out), on the CPU."""
    length = max(p.num_tokens for p in prompts)
    feats = torch.zeros(len(prompts), length, prompts[0].features.shape[1])
    masks = torch.zeros(len(prompts), length, dtype=torch.bool)
    for g, prompt in enumerate(prompts):
        feats[g, : prompt.num_tokens] = prompt.features.cpu()
        masks[g, : prompt.num_tokens] = prompt.mask.cpu()
    return feats, masks


@contextlib.contextmanager
def reuse_unfused_rpn_levels(head, features: dict[str, torch.Tensor]) -> Iterator[bool]:
    """Inside the block, the RPN ``head`` computes each level of the backbone's ``features``
    that reaches it unfused (the same tensor object) once: levels outside
    ``fusion_in_features`` (all of them with K = 0) give every prompt chunk the same
    objectness and deltas. Only those levels are remembered (fused maps are not kept alive
    across chunks). When several prompts run as one batch, the fused levels have batch G * N
    and the unfused ones N: the unfused levels' outputs are repeated for each prompt's rows.

    Only for detectron2's ``StandardRPNHead``, whose levels are independent (one shared conv
    applied per level), so computing a subset of levels is exact; other heads run as usual.
    Yields whether the reuse is active (the head then accepts levels of batch N beside fused
    levels of batch G * N)."""
    if type(head) is not StandardRPNHead:
        yield False
        return
    compute = head.forward
    shared = list(features.values())
    done: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(levels: list[torch.Tensor]):
        found = [next((d for d in done if d[0] is f), None) for f in levels]
        todo = [f for f, d in zip(levels, found) if d is None]
        objectness, deltas = compute(todo) if todo else ([], [])
        fresh = iter(zip(todo, objectness, deltas))
        out = [d if d is not None else next(fresh) for d in found]
        done.extend(
            d for d, old in zip(out, found) if old is None and any(d[0] is f for f in shared)
        )
        batch = max(f.shape[0] for f in levels)

        def tile(t: torch.Tensor) -> torch.Tensor:
            return t if t.shape[0] == batch else t.repeat(batch // t.shape[0], 1, 1, 1)

        return [tile(d[1]) for d in out], [tile(d[2]) for d in out]

    head.forward = forward
    try:
        yield True
    finally:
        del head.forward
