"""The OVRCNN user surface on a grounding model: OVPredictor with a vocabulary of names, and
phrase grounding with a caption."""

from __future__ import annotations

import numpy as np
import pytest

from ovdet.predictor import OVPredictor
from ovdet.utils.errors import InputError

NAMES = ["red circle", "blue square", "star"]


def test_predict_with_a_vocabulary_and_with_a_caption(build_grounding, bert_encoder):
    model = build_grounding(bert_encoder, NAMES)
    predictor = OVPredictor(model, min_size=64, max_size=96)
    image = (np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)
    out = predictor.predict(image, vocabulary=["green triangle", "star", "red hexagon"])
    assert predictor.vocabulary == ["green triangle", "star", "red hexagon"]
    assert set(out["class_names"]) <= set(predictor.vocabulary)
    assert out["boxes"].shape[1] == 4 and out["image_size"] == (60, 90)
    caption = "a red circle left of two blue squares"
    grounded = predictor.predict(image, caption=caption, phrases=["red circle", "blue squares"])
    assert len(grounded["scores"]) > 0
    assert set(grounded["class_names"]) <= {"red circle", "blue squares"}
    by_span = predictor.predict(image, caption=caption, spans=[(2, 12), (25, 37)])
    assert by_span["class_names"] == grounded["class_names"]
    with pytest.raises(InputError, match="no vocabulary"):
        predictor.predict(image, vocabulary=NAMES, caption=caption, phrases=["red circle"])


def test_caption_on_a_vocabulary_model_is_refused(tiny_fpn_config, fake_encoder):
    from detectron2.config import instantiate

    model = instantiate(tiny_fpn_config(fake_encoder.encode(NAMES)).model)
    predictor = OVPredictor(model, min_size=64, max_size=96)
    with pytest.raises(InputError, match="grounding model"):
        predictor.predict(np.zeros((40, 40, 3), np.uint8), caption="a star", phrases=["star"])
