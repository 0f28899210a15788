"""The student's config: the teacher's LazyConfig trained on the merged labels.

Changes to the teacher's config, and nothing else (schedule, losses, distillation, test set
and evaluator stay as they are):

* ``dataloader.train.dataset.names``: the merged json, registered as a dataset with the gold
  set's image root and base / novel split;
* ``dataloader.train.mapper.crowd_as_ignore = True``: the uncertain band's ignore regions;
* the classifier's **training vocabulary becomes its test vocabulary** (every class, in the
  merged json's category order), so pseudo boxes of novel classes are trained against their
  text embeddings like gold ones;
* ``train.init_checkpoint``: the teacher's weights (``init="teacher"``) or the config's own
  (``"scratch"``); ``train.output_dir``, ``train.max_iter``, ``train.seed`` as given.

:func:`control_config` is the student's gold-only control: the same schedule and start,
none of the changes above.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ovdet.utils.errors import InputError

__all__ = ["INITS", "control_config", "gold_dataset", "student_config"]

# where the student's weights start
INITS = ("teacher", "scratch")


def gold_dataset(cfg) -> tuple[str, Any]:
    """The config's training dataset: its registered name and metadata.

    Raises:
        InputError: more than one training dataset, or one that is not a registered COCO json.
    """
    from detectron2.config import instantiate
    from detectron2.data import MetadataCatalog

    names = cfg.dataloader.train.dataset.names
    names = instantiate(names) if not isinstance(names, (str, list, tuple)) else names
    if isinstance(names, (list, tuple)):
        if len(names) != 1:
            raise InputError(
                f"self-training labels one gold training set; the config trains on {list(names)}"
            )
        names = names[0]
    meta = MetadataCatalog.get(names)
    if not getattr(meta, "json_file", None) or not getattr(meta, "image_root", None):
        raise InputError(
            f"training dataset {names!r} has no json_file / image_root metadata; self-training "
            "needs a COCO-format training set (register it with ovdet.data.register_ov_dataset)"
        )
    return str(names), meta


def _classifier(cfg, where: str):
    try:
        classifier = cfg.model.roi_heads.box_predictor.classifier
        classifier.test_embeddings  # noqa: B018  (presence check)
        classifier.train_embeddings  # noqa: B018
    except (AttributeError, KeyError) as exc:
        raise InputError(
            f"{where}: self-training needs a detector whose classifier has train_embeddings and "
            "test_embeddings (model.roi_heads.box_predictor.classifier: OVRCNN, ViLD-ensemble "
            "and the distilled detectors); this config has none"
        ) from exc
    return classifier


def student_config(
    cfg,
    *,
    dataset: str,
    train_json: str,
    image_root: str,
    novel: Sequence[str],
    output_dir: str,
    init: str,
    teacher_weights: str,
    max_iter: int | None = None,
    seed: int | None = None,
    where: str = "self-train",
):
    """A copy of ``cfg`` that trains the student (see the module docstring).

    Args:
        cfg: the teacher's LazyConfig (overrides applied).
        dataset: name to register the merged json under.
        train_json, image_root: the merged labels and the gold set's image folder.
        novel: the novel class names (the split of the merged dataset).
        output_dir: the student's training folder.
        init: ``"teacher"`` (start from ``teacher_weights``) or ``"scratch"``.
        teacher_weights: the teacher's checkpoint.
        max_iter, seed: override the config's (None: keep).

    Raises:
        InputError: an unknown ``init``, a config without the classifier fields or with a
            mapper that cannot keep ignore regions.
    """
    from ovdet.data.datasets import register_ov_dataset

    if init not in INITS:
        raise InputError(f"--student must be one of {INITS}, got {init!r}")
    student = copy.deepcopy(cfg)
    classifier = _classifier(student, where)
    classifier.train_embeddings = copy.deepcopy(classifier.test_embeddings)
    register_ov_dataset(dataset, train_json, image_root, novel=list(novel), replace=True)
    student.dataloader.train.dataset.names = dataset
    mapper = student.dataloader.train.mapper
    target = mapper.get("_target_") if hasattr(mapper, "get") else None
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        target = locate(target)
    from ovdet.data.mapper import OVDatasetMapper

    if not (isinstance(target, type) and issubclass(target, OVDatasetMapper)):
        name = getattr(target, "__name__", target)
        raise InputError(
            f"{where}: the training mapper is {name}; ignore regions need an "
            "ovdet.data.OVDatasetMapper (or a subclass) as dataloader.train.mapper"
        )
    mapper.crowd_as_ignore = True
    start = str(teacher_weights) if init == "teacher" else None
    return _schedule(student, output_dir, start, max_iter, seed)


def control_config(
    cfg,
    *,
    output_dir: str,
    init_weights: str,
    max_iter: int | None = None,
    seed: int | None = None,
):
    """A copy of ``cfg`` that trains the **gold-only control** of a student.

    The teacher's own config, data and classifier (gold boxes, training vocabulary as
    configured), started from ``init_weights`` and trained with the student's schedule
    (``max_iter``, checkpoint period, ``seed``). A student that beats its control owes the
    difference to the pseudo boxes, not to the extra iterations.
    """
    return _schedule(copy.deepcopy(cfg), output_dir, str(init_weights), max_iter, seed)


def _schedule(cfg, output_dir: str, init_weights: str | None, max_iter, seed):
    """Set the start weights (None: the config's), output folder, iterations and seed."""
    if init_weights is not None:
        cfg.train.init_checkpoint = init_weights
        cfg.train.pop("init_partial", None)
    cfg.train.output_dir = str(output_dir)
    if max_iter is not None:
        cfg.train.max_iter = int(max_iter)
        period = int(cfg.train.checkpointer.get("period", max_iter))
        cfg.train.checkpointer.period = max(1, min(period, int(max_iter)))
    if seed is not None:
        cfg.train.seed = int(seed)
    return cfg
