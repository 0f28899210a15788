"""User API for text-prompted detection: :class:`OVPredictor`.

from ovdet.predictor import OVPredictor
predictor = OVPredictor.from_pretrained()          # the best shipped model (ovdet models)
cfg = "configs/ov_coco/vild_text_r50_fpn_scratch_lsj_180k.py"
predictor = OVPredictor.from_config(cfg, "model.pth")  # your own checkpoint
out = predictor.predict("street.jpg", vocabulary=["bus", "traffic cone", "dog"])
out["boxes"]        # (N, 4) float32, XYXY in original image pixels
out["scores"]       # (N,) float32, descending
out["labels"]       # (N,) int64, indices into out["class_names"]' vocabulary
out["class_names"]  # list[str] of length N: the name of each detection's class
out["masks"]        # (N, H, W) bool at original resolution, when the model has masks

Inputs are checked before any work: an image of any kind :func:`ovdet.utils.image.load_image`
accepts (paths, PIL images of every mode, numpy arrays of every common dtype and layout,
torch tensors; others are refused with a message naming the input), a vocabulary given as a
list of unique non-empty strings (a single string such as ``"star"`` is refused rather than
read as 4 one-letter classes) or as (C, D) embeddings, and a score threshold in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from detectron2.data import transforms as T

from ovdet.text.vocabulary import validate_names
from ovdet.utils.errors import InputError
from ovdet.utils.image import ImageLike, ImageReadError, load_image


def check_score_thresh(value: Any, where: str = "score_thresh") -> float:
    """``value`` as a float in [0, 1].

    Raises:
        TypeError: not a real number.
        ValueError: NaN or outside [0, 1] (scores are probabilities).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{where} must be in [0, 1] (scores are probabilities), got {value}; 0 keeps "
            "every detection"
        )
    return value


def _lower_model_score_thresh(model: torch.nn.Module, score_thresh: float) -> None:
    """The model drops boxes below its own test threshold before the predictor sees them:
    lower it to ``score_thresh`` when that is lower (as :meth:`OVPredictor.from_config`
    does through the config)."""
    box_predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    current = getattr(box_predictor, "test_score_thresh", None)
    if current is not None and score_thresh < float(current):
        box_predictor.test_score_thresh = score_thresh


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
        sam: a :class:`~ovdet.modeling.sam.BoxPromptedSAM` (moved to ``device``): the
            ``masks`` of the final detections come from SAM prompted with their boxes,
            replacing the model's own (with ``mask_scores``, SAM's predicted IoUs).
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
        sam: Any = None,
    ) -> None:
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.resize = resize or T.ResizeShortestEdge([min_size, min_size], max_size)
        self.score_thresh = check_score_thresh(score_thresh)
        self.input_format = input_format or getattr(model, "input_format", "BGR")
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"input_format must be 'RGB' or 'BGR', got {self.input_format!r}")
        self.spec = None  # the named model's ModelSpec (from_pretrained)
        self.sam = None if sam is None else sam.to(self.device)

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

        score_thresh = kwargs.get("score_thresh")
        if score_thresh is not None:
            check_score_thresh(score_thresh)
        cfg = load_config(config, overrides)
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

    @classmethod
    def from_pretrained(
        cls,
        name: str | Any | None = None,
        *,
        device: str | None = "auto",
        vocabulary: Sequence[str] | None = None,
        **kwargs,
    ) -> OVPredictor:
        """A named model (``ovdet models``): a shipped bundle, a model card of
        ``$OVDET_MODELS``, or a bundle folder / card file by path. Nothing is downloaded.

        Args:
            name: the model's name or path, or a ``ModelSpec``; None for the best shipped
                model (``ovdet.model_zoo.DEFAULT_MODEL``).
            device: "auto" (default: CUDA when available), "cuda", "cpu", ...
            vocabulary: class names to detect; default the model's classes
                (``predictor.spec.classes``).
            kwargs: :class:`OVPredictor` arguments (``score_thresh``, ...); the test-time
                resize defaults to the one the model was trained for.

        Returns:
            The predictor, with ``spec`` the model's ``ModelSpec``.

        Raises:
            UnknownModelError: an unknown name (the message lists the known ones).
            FileNotFoundError, InputError: a missing or broken bundle or card (named).
        """
        from ovdet.model_zoo import get_model

        score_thresh = kwargs.get("score_thresh")
        if score_thresh is not None:
            check_score_thresh(score_thresh)
        spec = get_model(name)
        loaded = spec.load(device=device or "auto")
        if score_thresh is not None:
            _lower_model_score_thresh(loaded.model, float(score_thresh))
        if loaded.resize is not None:
            kwargs.setdefault("resize", loaded.resize)
        predictor = cls(loaded.model, **kwargs)
        predictor.spec = spec
        if vocabulary is not None:
            predictor.set_vocabulary(vocabulary)
        return predictor

    @property
    def vocabulary(self) -> list[str]:
        return list(self.model.vocabulary)

    def set_vocabulary(
        self,
        vocabulary: Sequence[str] | torch.Tensor | np.ndarray,
        names: Sequence[str] | None = None,
    ) -> None:
        """Change what is detected.

        Args:
            vocabulary: a list of C class names (unique, non-empty strings; encoded by the
                model's text encoder, cached), or (C, D) class embeddings (a tensor or a float
                numpy array, e.g. from ``ovdet embed-text``).
            names: the C names of the embeddings' rows (embeddings only).

        Raises:
            TypeError: a string instead of a list (``"star"``), an unordered or non-string
                vocabulary.
            ValueError: an empty vocabulary, an empty or duplicated name, embeddings of the
                wrong shape or width, names that do not match the rows.
            InputError: names for a model without a text encoder (pass embeddings instead), or
                names its text encoder refuses (e.g. words a model bundle's text tower does
                not know); the previous vocabulary stays.
        """
        if isinstance(vocabulary, np.ndarray) and vocabulary.dtype.kind == "f":
            vocabulary = torch.from_numpy(np.ascontiguousarray(vocabulary))
        if isinstance(vocabulary, torch.Tensor):
            if names is not None:
                names = validate_names(names, "names of the embeddings")
            self.model.set_vocabulary(vocabulary, names_for_embeddings=names)
            return
        if names is not None:
            raise TypeError(
                "set_vocabulary: names= is only for a tensor of embeddings; pass class names "
                "as the vocabulary itself"
            )
        vocabulary = validate_names(vocabulary, "vocabulary")
        if vocabulary == self.vocabulary:
            return
        if getattr(self.model, "text_encoder", None) is None:
            shown = f"{vocabulary[:5]}{' ...' if len(vocabulary) > 5 else ''}"
            raise InputError(
                "this model has no text encoder (model.text_encoder in its config), so it "
                f"cannot encode class names {shown}; "
                "encode them with `ovdet embed-text --encoder ... --vocab NAMES --out v.npy` (the "
                "text encoder the detector was trained with) and pass the embeddings: "
                "--embeddings v.npy --names-file v.names.txt on the command line, or "
                "predictor.set_vocabulary(embeddings, names)"
            )
        previous = self.vocabulary
        self.model.set_vocabulary(vocabulary)
        prompts = getattr(self.model, "vocabulary_prompts", None)
        if callable(prompts):
            # a grounding model encodes its vocabulary lazily: encode it now, so that names its
            # encoder refuses leave the previous vocabulary in place
            try:
                prompts()
            except Exception:
                self.model.set_vocabulary(previous)
                raise

    def _prepare(self, image: ImageLike) -> dict[str, Any]:
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        arr = rgb if self.input_format == "RGB" else rgb[:, :, ::-1]
        transform = self.resize.get_transform(arr)
        new_h, new_w = getattr(transform, "new_h", 1), getattr(transform, "new_w", 1)
        if new_h < 1 or new_w < 1:
            raise ImageReadError(
                f"image of {height} x {width} pixels is too thin: resized for the model it "
                f"would be {new_h} x {new_w}; crop or pad it to a less extreme aspect ratio"
            )
        arr = transform.apply_image(np.ascontiguousarray(arr))
        tensor = torch.as_tensor(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        return {"image": tensor.to(self.device), "height": height, "width": width}

    def _format(
        self, instances, score_thresh: float, names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        instances = instances.to("cpu")
        keep = instances.scores >= score_thresh
        instances = instances[keep]
        order = torch.argsort(instances.scores, descending=True)
        instances = instances[order]
        vocab = self.vocabulary if names is None else list(names)
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
        """Detect in several images with one forward pass. See :meth:`predict`.

        Args:
            images: a list (or tuple) of images, or a 4-D array / tensor (N, ...) of N images;
                an empty list gives an empty list.

        Raises:
            TypeError: ``images`` is a single image (use :meth:`predict`).
        """
        if isinstance(images, (str, bytes)) or not hasattr(images, "__len__"):
            raise TypeError(
                f"predict_batch takes a list of images, got {type(images).__name__}; for one "
                "image use predict(image)"
            )
        if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim != 4:
            raise TypeError(
                f"predict_batch takes a list of images (or a 4-D batch), got one array of "
                f"shape {tuple(images.shape)}; for one image use predict(image)"
            )
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        thresh = self.score_thresh if score_thresh is None else check_score_thresh(score_thresh)
        if len(images) == 0:
            return []
        if self.sam is not None:  # read each image once: the detector and SAM use the same pixels
            images = [load_image(img) for img in images]
        inputs = [self._prepare(img) for img in images]
        outputs = self.model(inputs)
        results = [self._format(o["instances"], thresh) for o in outputs]
        if self.sam is not None:  # SAM's masks for the final boxes
            from ovdet.modeling.sam import masks_for_detections

            results = [masks_for_detections(self.sam, i, r) for i, r in zip(images, results)]
        return results

    def predict(
        self,
        image: ImageLike,
        vocabulary: Sequence[str] | None = None,
        score_thresh: float | None = None,
        *,
        caption: str | None = None,
        phrases: Sequence[str] | None = None,
        spans: Sequence | None = None,
    ) -> dict[str, Any]:
        """Detect the vocabulary's classes in one image.

        Args:
            image: a path, PIL image, numpy array or torch tensor; see
                :mod:`ovdet.utils.image` for the layouts (HWC, CHW), dtypes and value
                ranges accepted and how each is converted (e.g. a float image whose largest
                value is <= 1 is read as [0, 1]).
            vocabulary: a list of class names to detect (not a single string); ``None`` keeps
                the current vocabulary.
            score_thresh: minimum score in [0, 1]; default the predictor's ``score_thresh``.
            caption: phrase grounding instead of a vocabulary (a grounding model,
                ``ovdet.methods.grounding``): boxes for ``phrases`` of this caption (each at its
                first occurrence) or for character ``spans`` (``(start, end)`` or lists of
                them); ``labels`` then index the phrases and ``class_names`` are the phrases.

        Returns:
            dict with ``boxes`` (N, 4) XYXY float32 in original pixels, ``scores`` (N,),
            ``labels`` (N,) vocabulary indices, ``class_names`` (N names), ``image_size``
            (H, W), and ``masks`` (N, H, W) bool when the model predicts masks or the
            predictor has a ``sam`` (then also ``mask_scores`` (N,)). Sorted by descending
            score.

        Raises:
            ImageReadError: the image cannot be read or converted (the message names it).
            TypeError, ValueError: a bad vocabulary or threshold (see :meth:`set_vocabulary`).
        """
        if isinstance(image, (list, tuple)):
            raise TypeError(
                f"predict takes one image, got a {type(image).__name__}; use predict_batch for "
                "several images"
            )
        if caption is not None or phrases is not None or spans is not None:
            if vocabulary is not None or caption is None:
                raise InputError(
                    "predict: phrase grounding takes caption= with phrases= or spans=, and no "
                    "vocabulary"
                )
            return self._ground(image, caption, phrases, spans, score_thresh)
        return self.predict_batch([image], vocabulary=vocabulary, score_thresh=score_thresh)[0]

    @torch.no_grad()
    def _ground(self, image, caption, phrases, spans, score_thresh) -> dict[str, Any]:
        ground = getattr(self.model, "ground", None)
        if ground is None:
            raise InputError(
                f"predict(caption=...): {type(self.model).__name__} detects a vocabulary; phrase "
                "grounding needs a grounding model (GroundingRCNN, ovdet.methods.grounding)"
            )
        thresh = self.score_thresh if score_thresh is None else check_score_thresh(score_thresh)
        (out,) = ground([self._prepare(image)], caption, phrases=phrases, spans=spans)
        if phrases is not None:
            names = list(phrases)
        else:
            names = [
                " ".join(caption[a:b] for a, b in ([s] if isinstance(s[0], int) else s))
                for s in spans
            ]
        return self._format(out["instances"], thresh, names=names)
