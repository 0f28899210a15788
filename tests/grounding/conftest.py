"""Fixtures of the grounding tests: tiny random token encoders (no network) and tiny detectors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from transformers import BertConfig, BertModel, BertTokenizer

from ovdet.methods.grounding import grounding_model
from ovdet.text import HFTokenEncoder, OpenCLIPTokenEncoder, tiny_clip_config

MODELS = Path(__file__).resolve().parents[2] / "configs" / "common" / "models"
# word pieces: "triangle" -> "tri ##angle", "hexagon" -> "hex ##a ##gon"
WORDS = "a of two left right red blue green circle square tri ##angle hex ##a ##gon star . ,"


@pytest.fixture(scope="session")
def bert_encoder(tmp_path_factory) -> HFTokenEncoder:
    """A 1-layer 32-d random BERT with a word-piece vocabulary written here."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = folder / "vocab.txt"
    words = WORDS.split()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab))  # the fast tokenizer (offsets)
    config = BertConfig(
        vocab_size=len(words) + 5,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return HFTokenEncoder("tiny-bert", model=BertModel(config), tokenizer=tokenizer, max_tokens=64)


@pytest.fixture(scope="session")
def clip_encoder() -> OpenCLIPTokenEncoder:
    return OpenCLIPTokenEncoder.from_config(
        tiny_clip_config(embed_dim=16), seed=0, device="cpu", max_tokens=64
    )


def tiny_grounding_config(encoder, train_names, vocabulary=None, fusion_layers=1, **kwargs):
    """``ov_rcnn_fpn.py`` shrunk (R18-FPN, 32 channels, BN) turned into a Grounding R-CNN."""
    cfg = LazyConfig.load(str(MODELS / "ov_rcnn_fpn.py"))
    m = cfg.model
    bottom_up = m.backbone.bottom_up
    bottom_up.stem.norm = "BN"
    bottom_up.stem.out_channels = 64
    bottom_up.stages.norm = "BN"
    bottom_up.stages.depth = 18
    del bottom_up.stages.stride_in_1x1
    bottom_up.freeze_at = 0
    m.backbone.out_channels = 32
    m.proposal_generator.head.in_channels = 32
    m.proposal_generator.pre_nms_topk = (200, 100)
    m.proposal_generator.post_nms_topk = (32, 16)
    m.proposal_generator.batch_size_per_image = 64
    m.roi_heads.batch_size_per_image = 16
    m.roi_heads.box_head.input_shape.channels = 32
    m.roi_heads.box_head.fc_dims = [64, 64]
    m.roi_heads.box_predictor.input_shape.channels = 64
    m.roi_heads.box_predictor.test_score_thresh = 0.0
    m.roi_heads.mask_head.input_shape.channels = 32
    m.roi_heads.mask_head.conv_dims = [16, 16]
    cfg.model = grounding_model(
        m,
        token_encoder=encoder,
        train_vocabulary=list(train_names),
        vocabulary=None if vocabulary is None else list(vocabulary),
        text_dim=24,
        embed_dim=16,
        fusion_layers=fusion_layers,
        fusion_embed_dim=16,
        fusion_heads=2,
        fusion_ffn_dim=32,
        **kwargs,
    )
    return cfg


@pytest.fixture
def build_grounding():
    def build(encoder, train_names, vocabulary=None, fusion_layers=1, seed=0, **kwargs):
        cfg = tiny_grounding_config(encoder, train_names, vocabulary, fusion_layers, **kwargs)
        torch.manual_seed(seed)
        return instantiate(cfg.model)

    return build
