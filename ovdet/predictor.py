"""User API for text-prompted detection: :class:`OVPredictor`.

from ovdet.predictor import OVPredictor
predictor = OVPredictor.from_config("configs/ov_coco/vild_text_r50_fpn_1x.py", "model.pth")
out = predictor.predict("street.jpg", vocabulary=["bus", "traffic cone", "dog"])
out["boxes"]        # (N, 4) float32, XYXY in original image pixels
out["scores"]       # (N,) float32, descending
out["labels"]       # (N,) int64, indices into out["class_names"]' vocabulary
out["class_names"]  # list[str] of length N: the name of each detection's class
out["masks"]        # (N, H, W) bool at original resolution, when the model has masks
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from detectron2.data import transforms as T

from ovdet.utils.image import ImageLike, load_image


def _test_resize(augmentations: list) -> T.Augmentation | None:
    """The resize among a config's test-time augmentations, if any."""
    for aug in augmentations:
        if isinstance(aug, (T.ResizeShortestEdge, T.Resize)):
            return aug
    return None


class OVPredictor:
    """Text-prompted detection (and segmentation) with an ovdet model.

    The expensive vocabulary step (text encoding) is cached by the model, so calling
    :meth:`predict` repeatedly with the same vocabulary costs only the image forward pass;
    switching between vocabularies seen before is a cache hit.

    Args:
        model: an ovdet meta-architecture (e.g. ``OVRCNN``) with ``set_vocabulary``.
        min_size: test-time shortest edge (detectron2 ``ResizeShortestEdge``).
        max_size: test-time longest-edge cap.
        device: where to run; defaults to the model's device.
        score_thresh: drop detections scoring below this (applied after the model's own).
        input_format: "RGB" or "BGR", the channel order the model expects.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        min_size: int = 800,
        max_size: int = 1333,
        device: str | torch.device | None = None,
        score_thresh: float = 0.0,
        input_format: str | None = None,
        resize: T.Augmentation | None = None,
    ) -> None:
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.resize = resize or T.ResizeShortestEdge([min_size, min_size], max_size)
        self.score_thresh = float(score_thresh)
        self.input_format = input_format or getattr(model, "input_format", "BGR")
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"input_format must be 'RGB' or 'BGR', got {self.input_format!r}")

    @classmethod
    def from_config(
        cls,
        config: Any,
        weights: str | None = None,
        *,
        overrides: Sequence[str] = (),
        device: str | None = "auto",
        **kwargs,
    ) -> OVPredictor:
        """Build from a LazyConfig (path or loaded config) and a checkpoint path.

        Args:
            config: path to a LazyConfig ``.py`` file (trusted input: it is executed) or a
                loaded config with a ``model`` field.
            weights: a detectron2-format checkpoint (``.pth``); ``None`` keeps the model's
                initialisation (random weights: useful in tests only).
            overrides: ``key=value`` config overrides, e.g. ``("model.roi_heads....=0.3",)``.
            device: "auto" (default: CUDA when available), "cuda", "cpu", ...
        """
        from ovdet.engine.build import load_config, model_from_config, test_augmentations

        cfg = load_config(config, overrides)
        score_thresh = kwargs.get("score_thresh")
        try:
            box_predictor = cfg.model.roi_heads.box_predictor
        except (AttributeError, KeyError):
            box_predictor = None
        if score_thresh is not None and box_predictor is not None:
            # the model drops boxes below its own test threshold before we see them
            current = box_predictor.get("test_score_thresh", score_thresh)
            box_predictor.test_score_thresh = min(float(current), float(score_thresh))
        model, cfg = model_from_config(cfg, weights, device=device)
        kwargs.setdefault("resize", _test_resize(test_augmentations(cfg)))
        return cls(model, **kwargs)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.model.vocabulary)

    def set_vocabulary(self, vocabulary: Sequence[str] | torch.Tensor, names=None) -> None:
        """Change what is detected: class names (encoded, cached) or embeddings (C, D)."""
        if isinstance(vocabulary, torch.Tensor):
            self.model.set_vocabulary(vocabulary, names_for_embeddings=names)
        elif list(vocabulary) != self.vocabulary:
            self.model.set_vocabulary(list(vocabulary))

    def _prepare(self, image: ImageLike) -> dict[str, Any]:
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        arr = rgb if self.input_format == "RGB" else rgb[:, :, ::-1]
        arr = self.resize.get_transform(arr).apply_image(arr)
        tensor = torch.as_tensor(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        return {"image": tensor.to(self.device), "height": height, "width": width}

    def _format(self, instances, score_thresh: float) -> dict[str, Any]:
        instances = instances.to("cpu")
        keep = instances.scores >= score_thresh
        instances = instances[keep]
        order = torch.argsort(instances.scores, descending=True)
        instances = instances[order]
        vocab = self.vocabulary
        labels = instances.pred_classes.numpy().astype(np.int64)
        out: dict[str, Any] = {
            "boxes": instances.pred_boxes.tensor.numpy().astype(np.float32),
            "scores": instances.scores.numpy().astype(np.float32),
            "labels": labels,
            "class_names": [vocab[i] for i in labels],
            "image_size": tuple(instances.image_size),
        }
        if instances.has("pred_masks"):
            out["masks"] = instances.pred_masks.numpy().astype(bool)
        return out

    @torch.no_grad()
    def predict_batch(
        self,
        images: Sequence[ImageLike],
        vocabulary: Sequence[str] | None = None,
        score_thresh: float | None = None,
    ) -> list[dict[str, Any]]:
        """Detect in several images with one forward pass. See :meth:`predict`."""
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        thresh = self.score_thresh if score_thresh is None else float(score_thresh)
        inputs = [self._prepare(img) for img in images]
        outputs = self.model(inputs)
        return [self._format(o["instances"], thresh) for o in outputs]

    def predict(
        self,
        image: ImageLike,
        vocabulary: Sequence[str] | None = None,
        score_thresh: float | None = None,
    ) -> dict[str, Any]:
        """Detect the vocabulary's classes in one image.

        Args:
            image: a path, PIL image or numpy array (RGB, grayscale, RGBA, 16-bit, float).
            vocabulary: class names to detect; ``None`` keeps the current vocabulary.
            score_thresh: minimum score; default the predictor's ``score_thresh``.

        Returns:
            dict with ``boxes`` (N, 4) XYXY float32 in original pixels, ``scores`` (N,),
            ``labels`` (N,) vocabulary indices, ``class_names`` (N names), ``image_size``
            (H, W), and ``masks`` (N, H, W) bool when the model predicts masks. Sorted by
            descending score.
        """
        return self.predict_batch([image], vocabulary=vocabulary, score_thresh=score_thresh)[0]
