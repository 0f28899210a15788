"""Images missing from the region store are counted, logged and, past a fraction, an error."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import instantiate
from detectron2.utils.events import EventStorage

from ovdet.methods.vild import ViLDImageDistillation
from ovdet.modeling.distill import RegionDistiller

STORE = "/data/regions/ov_coco_train"
C_TRAIN, D = 5, 16


def _inputs(missing: list[bool]) -> list[dict]:
    return [
        {
            "image_id": i,
            "file_name": f"img{i}.jpg",
            "teacher_missing": m,
            "teacher_store": STORE,
        }
        for i, m in enumerate(missing)
    ]


def test_missing_images_are_counted_into_the_event_storage():
    distiller = RegionDistiller(ViLDImageDistillation(), max_missing_fraction=None)
    with EventStorage(0) as storage:
        for step, batch in enumerate([[False, True], [True, True], [False, False]]):
            storage.iter = step
            assert distiller.count_missing(_inputs(batch)) == sum(batch)
            storage.step()
        history = storage.history("distill/missing_images").values()
    assert [value for value, _ in history] == [1, 2, 0]
    assert (distiller.images_seen, distiller.images_missing) == (6, 3)
    # inputs without the key (dataset proposals, online teachers) are never "missing"
    assert distiller.count_missing([{"image_id": 9}]) == 0
    # outside a training loop there is no storage: counted all the same
    assert distiller.images_seen == 7


def test_a_periodic_summary_names_the_store(caplog):
    distiller = RegionDistiller(ViLDImageDistillation(), max_missing_fraction=None, log_period=2)
    with caplog.at_level(logging.WARNING, logger="ovdet.modeling.distill.region"):
        distiller.count_missing(_inputs([False, True]))
        assert not caplog.records
        distiller.count_missing(_inputs([False, False]))
        assert len(caplog.records) == 1
        message = caplog.records[0].getMessage()
        assert "1 of the 4 images of the last 2 steps" in message and STORE in message
        # a period without missing images is quiet
        distiller.count_missing(_inputs([False, False]))
        distiller.count_missing(_inputs([False, False]))
        assert len(caplog.records) == 1


def test_too_many_missing_images_is_an_error_naming_the_store():
    distiller = RegionDistiller(
        ViLDImageDistillation(), max_missing_fraction=0.25, missing_min_images=4
    )
    distiller.count_missing(_inputs([True, False]))  # 1 of 2: not enough images yet
    with pytest.raises(RuntimeError) as error:
        distiller.count_missing(_inputs([False, True]))  # 2 of 4 = 50% > 25%
    message = str(error.value)
    assert "2 of the 4 training images so far (50.0%)" in message
    assert STORE in message and "image_id=0 (img0.jpg)" in message
    assert "ovdet extract-regions" in message and "max_missing_fraction" in message


def test_a_tolerated_fraction_trains_on():
    distiller = RegionDistiller(ViLDImageDistillation(), missing_min_images=10)  # default 1%
    assert distiller.max_missing_fraction == 0.01
    for _ in range(50):
        distiller.count_missing(_inputs([False, False]))
    distiller.count_missing(_inputs([True, False]))  # 1 of 102 < 1%
    with pytest.raises(RuntimeError, match="2 of the 104"):
        distiller.count_missing(_inputs([True, False]))  # 2 of 104 > 1%
    unlimited = RegionDistiller(ViLDImageDistillation(), max_missing_fraction=None)
    for _ in range(300):
        unlimited.count_missing(_inputs([True, True]))
    assert unlimited.images_missing == 600


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_missing_fraction": 1.5},
        {"max_missing_fraction": "0.1"},
        {"missing_min_images": 0},
        {"log_period": 0},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RegionDistiller(ViLDImageDistillation(), **kwargs)


def test_training_step_logs_missing_images(tiny_fpn_config, make_batch):
    cfg = tiny_fpn_config(torch.randn(C_TRAIN, D, generator=torch.Generator().manual_seed(1)))
    cfg.model.distillers = [RegionDistiller(ViLDImageDistillation())]
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    batch = make_batch(C_TRAIN)
    g = torch.Generator().manual_seed(0)
    batch[0].update(
        teacher_proposals=torch.tensor([[2.0, 2.0, 30.0, 30.0]]),
        teacher_embeddings=F.normalize(torch.randn(1, D, generator=g), dim=1),
        teacher_missing=False,
        teacher_store=STORE,
    )
    batch[1].update(
        teacher_proposals=torch.zeros(0, 4),
        teacher_embeddings=torch.zeros(0, D),
        teacher_missing=True,
        teacher_store=STORE,
    )
    with EventStorage(0) as storage:
        losses = model(batch)
        assert storage.latest()["distill/missing_images"][0] == 1
    assert torch.isfinite(losses["loss_vild_image"])
    assert (model.distillers[0].images_seen, model.distillers[0].images_missing) == (2, 1)
