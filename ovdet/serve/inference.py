"""One model shared by every request of ``ovdet serve``: :class:`SharedPredictor`."""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from ovdet.evaluation.results import detections_to_coco_results
from ovdet.serve.request import DetectRequest
from ovdet.utils.errors import InputError

__all__ = ["SharedPredictor", "model_prompts"]


def model_prompts(predictor: Any) -> tuple[str, ...]:
    """The prompt kinds a predictor takes: ``("vocabulary",)`` for :class:`OVPredictor`, and
    ``"caption"`` too when its ``predict`` takes ``caption=`` (a grounding model)."""
    try:
        parameters = inspect.signature(predictor.predict).parameters
    except (TypeError, ValueError):  # no signature to read: a plain vocabulary predictor
        parameters = {}
    return ("caption", "vocabulary") if "caption" in parameters else ("vocabulary",)


def _jsonable(value: Any) -> Any:
    """``value`` as plain json data (paths and other objects as strings)."""
    return json.loads(json.dumps(value, default=str))


class SharedPredictor:
    """A predictor that concurrent requests share: loaded once, one inference at a time.

    Setting the vocabulary and running the model both change the model's state, so each
    request holds a lock for the two together; decoding the image before and encoding the
    results after run outside it.

    Args:
        predictor: an :class:`ovdet.predictor.OVPredictor` (or an object with the same
            ``predict`` and ``vocabulary``); a grounding model's ``predict`` also takes
            ``caption=`` (the page then offers a caption input) and its ``labels`` index
            ``vocabulary`` as it stands after the call (the caption's phrases).
        spec: the model's ``ModelSpec`` (name, description, kind, classes, base, novel,
            metrics, image_size, source); default ``predictor.spec``.

    Raises:
        InputError: no spec given and the predictor has no ``spec``.
    """

    def __init__(self, predictor: Any, spec: Any = None) -> None:
        spec = spec if spec is not None else getattr(predictor, "spec", None)
        if spec is None:
            raise InputError(
                "ovdet serve needs the model's ModelSpec: build the predictor with "
                "OVPredictor.from_pretrained(name) (it sets .spec) or pass spec="
            )
        self.predictor = predictor
        self.spec = spec
        self.prompts = model_prompts(predictor)
        self._base = frozenset(getattr(spec, "base", None) or ())
        self._lock = threading.Lock()
        self.inferences = 0

    def is_novel(self, name: str) -> bool | None:
        """True for a name that is not a base class (the model never saw its boxes); None when
        the model does not list its base classes."""
        return None if not self._base else name not in self._base

    def info(self) -> dict[str, Any]:
        """The model, as shown by the page (``GET /api/info``)."""
        spec = self.spec

        def names(field: str) -> list[str]:
            return [str(n) for n in (getattr(spec, field, None) or ())]

        return {
            "name": str(getattr(spec, "name", "")),
            "description": str(getattr(spec, "description", "") or ""),
            "kind": str(getattr(spec, "kind", "") or ""),
            "classes": names("classes"),
            "base": names("base"),
            "novel": names("novel"),
            "metrics": _jsonable(getattr(spec, "metrics", None) or {}),
            "image_size": _jsonable(getattr(spec, "image_size", None)),
            "source": _jsonable(getattr(spec, "source", None)),
            "prompts": list(self.prompts),
        }

    def _predict(self, request: DetectRequest) -> dict[str, Any]:
        prompt = request.prompt
        if prompt.caption is not None:
            return self.predictor.predict(
                request.image, caption=prompt.caption, score_thresh=request.score_thresh
            )
        return self.predictor.predict(
            request.image, vocabulary=prompt.vocabulary, score_thresh=request.score_thresh
        )

    def detect(self, request: DetectRequest) -> dict[str, Any]:
        """Run the model on one request.

        Returns:
            ``{"image": {"id", "file_name", "height", "width"}, "prompt": "vocabulary" |
            "caption", "categories": [{"id", "name", "novel"}], "score_thresh",
            "results": [...], "timing": {"decode_s", "wait_s", "predict_s", "encode_s"}}``
            (the app adds ``receive_s``, the time to read the request);
            ``results`` are exactly the entries ``ovdet detect`` writes to ``results.json``
            for this image (category ids 1..C in vocabulary order, XYWH boxes, RLE masks,
            ``category_name``, ``file_name``), by descending score.

        Raises:
            InputError, ValueError, TypeError: the predictor refused the prompt or image.
        """
        queued = time.perf_counter()
        with self._lock:
            start = time.perf_counter()
            out = self._predict(request)
            vocabulary: Sequence[str] = list(self.predictor.vocabulary)
            self.inferences += 1
        done = time.perf_counter()
        height, width = request.image.shape[:2]
        results = detections_to_coco_results(
            request.image_id,
            out["boxes"],
            out["scores"],
            out["labels"],
            list(range(1, len(vocabulary) + 1)),  # vocabulary row i -> category id i + 1
            out.get("masks"),
            category_names=vocabulary,
            file_name=request.file_name,
        )
        return {
            "image": {
                "id": request.image_id,
                "file_name": request.file_name,
                "height": int(height),
                "width": int(width),
            },
            "prompt": request.prompt.kind,
            "categories": [
                {"id": i + 1, "name": name, "novel": self.is_novel(name)}
                for i, name in enumerate(vocabulary)
            ],
            "score_thresh": request.score_thresh,
            "results": results,
            "timing": {
                "decode_s": round(request.decode_s, 6),
                "wait_s": round(start - queued, 6),
                "predict_s": round(done - start, 6),
                "encode_s": round(time.perf_counter() - done, 6),
            },
        }
