"""Work shared by the prompt chunks of one image batch is done once and changes nothing: the
first fusion layer's image projections, and the RPN on FPN levels that are not fused."""

from __future__ import annotations

import pytest
import torch

from ovdet.methods.grounding import BiAttentionLayer, FeatureTextFusion
from ovdet.text import resolve_vocabulary

from .test_detector import NAMES, _images, _strip_masks


def _features(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "p2": torch.randn(2, 8, 6, 5, generator=g),
        "p3": torch.randn(2, 8, 3, 3, generator=g),
    }


def test_fusion_cache_is_exact_and_projects_the_image_once(monkeypatch):
    torch.manual_seed(0)
    fusion = FeatureTextFusion(
        in_features=["p2", "p3"], image_dim=8, text_dim=6, num_layers=2, embed_dim=8,
        num_heads=2, ffn_dim=12, layer_scale=0.5,
    ).eval()  # fmt: skip
    features = _features()
    prompts = [(torch.randn(1, 4, 6), torch.tensor([[True] * 4])) for _ in range(3)]
    prompts.append((torch.randn(1, 4, 6), torch.tensor([[True, True, True, False]])))
    calls = []
    original = BiAttentionLayer.project_image

    def counted(self, image):
        calls.append(self)
        return original(self, image)

    monkeypatch.setattr(BiAttentionLayer, "project_image", counted)
    with torch.no_grad():
        plain = [fusion(features, t, m) for t, m in prompts]
        assert len(calls) == 2 * len(prompts)  # every layer, every prompt
        calls.clear()
        cache: dict = {}
        cached = [fusion(features, t, m, cache=cache) for t, m in prompts]
    # the first layer's projections once for all prompts, the second layer's per prompt
    assert calls.count(fusion.layers[0]) == 1 and calls.count(fusion.layers[1]) == len(prompts)
    for (f_a, t_a), (f_b, t_b) in zip(plain, cached):
        assert torch.equal(t_a, t_b)
        assert all(torch.equal(f_a[k], f_b[k]) for k in f_a)
    # other features: the cache is refreshed, not reused
    other = _features(1)
    with torch.no_grad():
        fresh, _ = fusion(other, *prompts[0], cache=cache)
        direct, _ = fusion(other, *prompts[0])
    assert all(torch.equal(fresh[k], direct[k]) for k in fresh)
    with pytest.raises(RuntimeError, match="inference"):
        fusion(_features(2), *prompts[0], cache={})


def test_padding_mask_path_equals_the_unmasked_path_without_padding():
    torch.manual_seed(0)
    layer = BiAttentionLayer(8, 6, embed_dim=8, num_heads=2, ffn_dim=0, layer_scale=1.0)
    image, text = torch.randn(1, 10, 8), torch.randn(1, 3, 6)
    # a padded token that is masked changes nothing on the image side
    padded = torch.cat([text, torch.randn(1, 1, 6)], dim=1)
    out, _ = layer(image, text, torch.ones(1, 3, dtype=torch.bool))
    out_pad, _ = layer(image, padded, torch.tensor([[True, True, True, False]]))
    torch.testing.assert_close(out, out_pad)


@pytest.mark.parametrize("chunk_batch", [1, 2, 8])
@pytest.mark.parametrize("fusion_layers", [0, 1])
def test_unfused_rpn_levels_are_computed_once_per_image_batch(
    build_grounding, clip_encoder, fusion_layers, chunk_batch
):
    """Chunks one at a time or several as one batch (``test_chunk_batch``, the last group
    smaller): the detections of running each prompt alone and merging."""
    names = resolve_vocabulary("lvis")[:60]
    model = build_grounding(
        clip_encoder, NAMES[:3], names, fusion_layers=fusion_layers,
        fusion_in_features=["p4", "p5", "p6"], test_chunk_batch=chunk_batch,
    )  # fmt: skip
    model = _strip_masks(model).eval()
    prompts = model.vocabulary_prompts()
    assert len(prompts) >= 3
    head = model.proposal_generator.rpn_head
    shapes: list[tuple[int, ...]] = []
    hook = head.conv.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
    roi_calls: list[int] = []
    roi_hook = model.roi_heads.register_forward_hook(lambda m, i, o: roi_calls.append(len(o[0])))
    images = _images()
    with torch.no_grad():
        chunked = model.inference(images, do_postprocess=False)
        rpn_calls = list(shapes)
        roi_hook.remove()
        pre = model.preprocess_image(images)
        features = model.backbone(pre.tensor)
        per_prompt = [model._detect(pre, features, p) for p in prompts]  # nothing reused
    hook.remove()
    assert "forward" not in vars(head)  # the reuse ends with the call
    levels = len(model.proposal_generator.in_features)
    fused = 0 if fusion_layers == 0 else 3
    groups = -(-len(prompts) // chunk_batch)
    assert len(rpn_calls) == levels + (groups - 1) * fused
    # one ROI-head pass per group, over every (chunk, image) row of it
    assert roi_calls == [
        len(images) * min(chunk_batch, len(prompts) - s)
        for s in range(0, len(prompts), chunk_batch)
    ]
    offset = 0
    expected = []
    for p, results in zip(prompts, per_prompt):
        for r in results:
            r.pred_classes = r.pred_classes + offset
        offset += len(p.phrases)
    from ovdet.methods.grounding import merge_detections

    pred = model.roi_heads.box_predictor
    for i in range(len(images)):
        expected.append(
            merge_detections(
                [chunk[i] for chunk in per_prompt], pred.test_nms_thresh, pred.test_topk_per_image
            )
        )
    for a, b in zip(chunked, expected):
        assert len(a) > 0
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)


@pytest.mark.parametrize(
    "head", [{"aggregation": "max"}, {"cls_loss": "softmax"}, {"aggregation": "eot"}]
)
def test_chunks_in_one_batch_equal_chunks_one_at_a_time_for_every_readout(
    build_grounding, clip_encoder, head
):
    """Prompts of different lengths and phrase counts in one batch: each image row is scored
    against its own prompt's mask and phrase map (masks included)."""
    names = resolve_vocabulary("lvis")[:45]
    out = {}
    for chunk_batch in (1, 4):
        model = build_grounding(
            clip_encoder, NAMES[:3], names, fusion_layers=2, test_chunk_batch=chunk_batch,
            max_test_phrases=7, **head,
        ).eval()  # fmt: skip
        prompts = model.vocabulary_prompts()
        assert len({p.num_tokens for p in prompts}) > 1 and len(prompts) > 4
        rows: list[int] = []  # token rows per fusion call: chunks of the pass x images
        hook = model.fusion.register_forward_hook(lambda m, i, o, r=rows: r.append(o[1].shape[0]))
        with torch.no_grad():
            out[chunk_batch] = model.inference(_images(), do_postprocess=False)
        hook.remove()
        sizes = [min(chunk_batch, len(prompts) - s) for s in range(0, len(prompts), chunk_batch)]
        assert rows == [2 * g for g in sizes]  # the chunks really ran chunk_batch at a time
    for a, b in zip(out[1], out[4]):
        assert len(a) > 0 and torch.equal(a.pred_classes, b.pred_classes)
        torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor)
        torch.testing.assert_close(a.scores, b.scores)
        torch.testing.assert_close(a.pred_masks, b.pred_masks)


def test_training_refuses_a_context_of_several_prompts(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:3], fusion_layers=1).eval()
    prompts = [model.encode_names(NAMES[:2]), model.encode_names(NAMES[2:3])]
    with torch.no_grad():
        pre = model.preprocess_image(_images(1))
        _, text = model.fuse_prompts(model.backbone(pre.tensor), prompts)
    assert not text.shared and text.mask.shape[0] == 2 and len(text.phrase_map) == 2
    pred = model.roi_heads.box_predictor
    text.counts = [0, 0]
    with pred.use_text(text), pytest.raises(RuntimeError, match="one prompt"):
        pred.losses((torch.zeros(0, text.mask.shape[1]), torch.zeros(0, 4)), [])


def test_chunk_batch_default_and_bad_values(build_grounding, clip_encoder):
    model = build_grounding(clip_encoder, NAMES[:3], fusion_layers=1)
    assert model.test_chunk_batch is None and model.chunk_batch == 1  # CPU: one at a time
    model.test_chunk_batch = 3
    assert model.chunk_batch == 3
    with pytest.raises(ValueError, match="test_chunk_batch"):
        build_grounding(clip_encoder, NAMES[:3], fusion_layers=1, test_chunk_batch=0)


def test_fusion_refuses_token_rows_that_do_not_tile_the_images():
    fusion = FeatureTextFusion(
        in_features=["p2", "p3"], image_dim=8, text_dim=6, num_layers=1, embed_dim=8,
        num_heads=2, ffn_dim=0,
    )  # fmt: skip
    features = _features()  # 2 images
    with pytest.raises(ValueError, match="3 token rows for 2 images"):
        fusion(features, torch.randn(3, 4, 6), torch.ones(3, 4, dtype=torch.bool))
    fused, text = fusion(features, torch.randn(4, 4, 6), torch.ones(4, 4, dtype=torch.bool))
    assert text.shape[0] == 4 and fused["p2"].shape[0] == 4 and fused["p3"].shape[0] == 4
