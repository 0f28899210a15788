"""Teachers: what proposes the pseudo-boxes, behind one small interface.

A teacher has ``classes`` (its vocabulary, the categories of the output), ``novel`` (the
classes it never saw boxes for, or None when unknown), ``identity()`` (what makes its output
what it is, for the run manifest) and ``label(images)``: for a list of RGB ``uint8`` (H, W, 3)
arrays, one dict per image with ``boxes`` (N, 4) XYXY float32 in the image's pixels,
``scores`` (N,), ``labels`` (N,) indices into ``classes`` and, for models with masks,
``masks`` (N, H, W) bool. A new teacher is one subclass of :class:`PseudoLabelTeacher`.

:class:`DetectorTeacher` wraps any ovdet detector (:class:`ovdet.predictor.OVPredictor`: a
named model, or a config and its weights); :func:`build_detector_teacher` builds one from the
options of ``ovdet detect``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ovdet.utils.errors import InputError

__all__ = ["DetectorTeacher", "PseudoLabelTeacher", "build_detector_teacher"]


class PseudoLabelTeacher(abc.ABC):
    """The interface of a pseudo-label teacher (see the module docstring)."""

    classes: list[str]
    novel: list[str] | None = None

    @abc.abstractmethod
    def label(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Detections of each image (see the module docstring)."""

    def identity(self) -> dict[str, Any]:
        """The teacher's part of the run's settings (compared when a run resumes)."""
        return {"teacher": type(self).__name__}


class DetectorTeacher(PseudoLabelTeacher):
    """An ovdet detector as a teacher.

    Args:
        predictor: an :class:`~ovdet.predictor.OVPredictor` with its vocabulary set.
        min_score: the lowest score the filters can keep (the predictor drops lower ones).
        novel: the classes the model never saw boxes for (None: unknown).
        identity: the model's identity for the manifest (config/weights/model, as
            ``ovdet detect`` records them).
    """

    def __init__(
        self,
        predictor: Any,
        *,
        min_score: float = 0.0,
        novel: Sequence[str] | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        self.predictor = predictor
        self.classes = list(predictor.vocabulary)
        self.min_score = float(min_score)
        self.novel = None if novel is None else list(novel)
        self._identity = identity or {"teacher": "DetectorTeacher"}

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def label(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predictor.predict_batch(list(images), score_thresh=self.min_score)


def build_detector_teacher(
    *,
    model: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    vocab: str | None = None,
    vocab_file: str | None = None,
    embeddings: str | None = None,
    names_file: str | None = None,
    device: str | None = None,
    min_score: float = 0.0,
    load: bool = True,
) -> tuple[DetectorTeacher | None, list[str], dict[str, Any]]:
    """A detector teacher from ``ovdet detect``'s model and vocabulary options.

    With ``load=False`` only the cheap checks run (files, model name, vocabulary) and the
    teacher is None: the run checks everything before it builds a model.

    Returns:
        (teacher or None, vocabulary names, identity: ``{"config", "weights", "model",
        "vocabulary", "novel"}``).

    Raises:
        InputError, FileNotFoundError, ValueError: a bad option or file, named.
    """
    from ovdet.detect.checks import resolve_detect_vocabulary
    from ovdet.detect.run import file_identity, model_choice

    spec = model_choice(model, config, weights, overrides)
    given = (vocab, vocab_file, embeddings, names_file) != (None,) * 4
    if spec is None or given:
        names, emb, vocab_identity = resolve_detect_vocabulary(
            vocab=vocab, vocab_file=vocab_file, embeddings=embeddings, names_file=names_file
        )
    elif spec.classes:  # a named model's own classes
        names, emb = list(spec.classes), None
        vocab_identity = {"names": names, "embeddings": None}
    else:
        raise InputError(
            f"model {spec.name} ({spec.path}) has no default vocabulary; pass one with --vocab "
            "NAMES or --vocab-file FILE"
        )
    if spec is None:
        identity = {
            "config": dict(file_identity(config, "--config"), overrides=list(overrides)),
            "weights": file_identity(weights, "--weights"),
            "model": None,
        }
        novel = None
    else:
        identity = {
            "config": {"file": None, "sha256": None, "overrides": []},
            "weights": None,
            "model": spec.identity(),
        }
        novel = [n for n in names if n not in spec.base] if spec.base else None
    identity.update(vocabulary=vocab_identity, novel=novel)
    if not load:
        return None, names, identity
    predictor = _predictor(spec, config, weights, overrides, device, min_score)
    try:
        if emb is not None:
            predictor.set_vocabulary(emb, names=names)
        else:
            predictor.set_vocabulary(names)
    except ValueError as exc:  # InputError included
        option = "--embeddings" if emb is not None else "--vocab"
        raise InputError(f"{option}: {exc}") from exc
    teacher = DetectorTeacher(predictor, min_score=min_score, novel=novel, identity=identity)
    return teacher, names, identity


def _predictor(spec, config, weights, overrides, device, min_score):
    from ovdet.predictor import OVPredictor

    if spec is None:
        return OVPredictor.from_config(
            str(config),
            str(weights),
            overrides=list(overrides),
            device=device or "auto",
            score_thresh=min_score,
        )
    return OVPredictor.from_pretrained(spec, device=device or "auto", score_thresh=min_score)
