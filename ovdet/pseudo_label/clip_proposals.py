"""The "CLIP on proposals" teacher: zero-shot ViLD as a pseudo-labeller.

A detector's RPN (trained on base boxes, class-agnostic) proposes the top ``top_m`` boxes of
an image; a CLIP region teacher embeds each crop (:mod:`ovdet.teacher`, ViLD's 1x and 1.5x
crops); each box is scored against the class text embeddings of the same CLIP
(``docs/methods.md#clip-basics``):

    p(c | b) = softmax_c(cos(v_b, t_c) / tau),    score(b, c) = p(c | b)^(1 - w) * o_b^w

with ``tau`` CLIP's own temperature (``1 / logit_scale``) unless given, ``o_b`` the RPN's
objectness and ``w`` = ``objectness_weight`` (0: CLIP alone, the "CLIP on cropped regions"
baseline of the ViLD paper; default 0.5). Each box keeps its best class; per-class NMS
follows. No detector head is involved, so the teacher needs no training beyond the RPN and
CLIP. Why w = 0.5: CLIP names a crop of background as confidently as a crop of an object;
on 80 OV-Shapes training images (seed-0 benchmark teacher and RPN, 50 proposals) novel
precision / recall of boxes >= 0.7 after the self-training merge rule went from 28.5 / 96.2 %
(w = 0) to 75.0 / 94.9 % (w = 0.5) (docs/pseudo_label.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ovdet.utils.errors import InputError
from ovdet.utils.io import file_sha256

from .teachers import PseudoLabelTeacher

__all__ = ["CLIPProposalTeacher", "build_clip_proposal_teacher"]


class CLIPProposalTeacher(PseudoLabelTeacher):
    """Class-agnostic proposals classified by CLIP region embeddings (see the module doc).

    Args:
        proposals: a :class:`~ovdet.teacher.proposals.ModelProposals` (the RPN).
        region_teacher: a :class:`~ovdet.teacher.RegionTeacher` (CLIP crops).
        class_embeddings: (C, D) text embeddings of ``classes`` from the same CLIP.
        classes: the C class names.
        temperature: softmax temperature tau (> 0).
        objectness_weight: w in [0, 1].
        nms: per-class NMS IoU of the scored boxes.
        novel: the novel class names (None: unknown).
        identity: the manifest's record of the teacher.
    """

    def __init__(
        self,
        proposals: Any,
        region_teacher: Any,
        class_embeddings: torch.Tensor,
        classes: Sequence[str],
        *,
        temperature: float,
        objectness_weight: float = 0.5,
        nms: float = 0.5,
        novel: Sequence[str] | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        if class_embeddings.ndim != 2 or class_embeddings.shape[0] != len(classes):
            raise InputError(
                f"CLIP proposals teacher: {tuple(class_embeddings.shape)} class embeddings for "
                f"{len(classes)} classes; give one row per class"
            )
        if class_embeddings.shape[1] != region_teacher.dim:
            raise InputError(
                f"CLIP proposals teacher: class embeddings of dimension "
                f"{class_embeddings.shape[1]} but the CLIP image tower gives "
                f"{region_teacher.dim}; embed the classes with the same CLIP"
            )
        if not temperature > 0:
            raise InputError(f"CLIP temperature must be > 0, got {temperature}")
        if not 0.0 <= objectness_weight <= 1.0:
            raise InputError(f"objectness weight must be in [0, 1], got {objectness_weight}")
        self.proposals = proposals
        self.region_teacher = region_teacher
        self.text = torch.nn.functional.normalize(class_embeddings.float(), dim=-1)
        self.classes = list(classes)
        self.temperature = float(temperature)
        self.objectness_weight = float(objectness_weight)
        self.nms = float(nms)
        self.novel = None if novel is None else list(novel)
        self._identity = identity or {"teacher": "CLIPProposalTeacher"}

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def score(self, embeddings: torch.Tensor, objectness: torch.Tensor) -> torch.Tensor:
        """(N, C) scores of N boxes from their (N, D) CLIP embeddings and (N,) objectness."""
        emb = torch.nn.functional.normalize(embeddings.float(), dim=-1)
        probs = (emb @ self.text.T / self.temperature).softmax(dim=-1)
        w = self.objectness_weight
        if w == 0.0:
            return probs
        return probs.pow(1.0 - w) * objectness.float().clamp(min=0.0)[:, None].pow(w)

    def label(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        from torchvision.ops import batched_nms

        out = []
        for image, props in zip(images, self.proposals.batch(list(images))):
            boxes = torch.as_tensor(props["boxes"], dtype=torch.float32).reshape(-1, 4)
            if len(boxes) == 0:
                out.append(_empty())
                continue
            emb = self.region_teacher.embed(image, boxes)
            scores, labels = self.score(emb, torch.as_tensor(props["scores"])).max(dim=1)
            keep = batched_nms(boxes, scores, labels, self.nms)
            out.append(
                {
                    "boxes": boxes[keep].numpy(),
                    "scores": scores[keep].numpy(),
                    "labels": labels[keep].numpy(),
                }
            )
        return out


def _empty() -> dict[str, np.ndarray]:
    return {
        "boxes": np.zeros((0, 4), np.float32),
        "scores": np.zeros(0, np.float32),
        "labels": np.zeros(0, np.int64),
    }


def build_clip_proposal_teacher(
    *,
    config: str | os.PathLike,
    weights: str | os.PathLike,
    clip: str | os.PathLike,
    embeddings: str | os.PathLike,
    overrides: Sequence[str] = (),
    top_m: int = 100,
    temperature: float | None = None,
    objectness_weight: float = 0.5,
    nms: float = 0.5,
    novel: Sequence[str] | None = None,
    device: str | None = None,
    load: bool = True,
) -> tuple[CLIPProposalTeacher | None, list[str], dict[str, Any]]:
    """The CLIP-on-proposals teacher from files.

    Args:
        config, weights, overrides: the detector whose RPN proposes (its heads are unused).
        clip: a small-CLIP checkpoint (``ovdet pretrain-clip``; its ``.json`` config beside).
        embeddings: (C, D) class embeddings of this CLIP with a ``.names.txt`` sidecar
            (``ovdet embed-text``); the vocabulary.
        top_m: proposals per image; temperature: tau (None: the CLIP's own);
        objectness_weight, nms: see :class:`CLIPProposalTeacher`.
        load: False: only the cheap checks, returns (None, names, identity).

    Returns:
        (teacher or None, class names, identity for the run's manifest).
    """
    from ovdet.detect.run import file_identity
    from ovdet.text import load_class_embeddings
    from ovdet.text.embeddings import names_path

    for value, option in ((config, "--config"), (weights, "--weights"), (clip, "--clip")):
        if value is None:
            raise InputError(f"the CLIP proposals teacher needs {option}")
    if embeddings is None:
        raise InputError(
            "the CLIP proposals teacher needs --embeddings: class embeddings of the same CLIP "
            "(`ovdet embed-text`), with their names sidecar"
        )
    if isinstance(top_m, bool) or not isinstance(top_m, int) or top_m < 1:
        raise InputError(f"--top-proposals must be an integer >= 1, got {top_m!r}")
    file_identity(embeddings, "--embeddings")
    sidecar = names_path(embeddings)
    names = [n for n in sidecar.read_text("utf-8").splitlines() if n] if sidecar.is_file() else []
    if not names:
        raise InputError(
            f"--embeddings {embeddings} has no names sidecar (<stem>.names.txt); write it with "
            "`ovdet embed-text`"
        )
    identity = {
        "config": dict(file_identity(config, "--config"), overrides=list(overrides)),
        "weights": file_identity(weights, "--weights"),
        "model": {
            "name": "clip-proposals",
            "kind": "teacher",
            "path": str(clip),
            "sha256": file_sha256(clip),
            "top_m": top_m,
            "temperature": temperature,
            "objectness_weight": objectness_weight,
            "nms": nms,
        },
        "vocabulary": {"names": names, "embeddings": file_identity(embeddings, "--embeddings")},
        "novel": None if novel is None else list(novel),
    }
    if not load:
        return None, names, identity
    from ovdet.engine.build import load_config, model_from_config, test_augmentations
    from ovdet.teacher import build_clip_region_teacher
    from ovdet.teacher.proposals import ModelProposals
    from ovdet.teacher.small_clip import load_small_clip
    from ovdet.utils.device import resolve_device

    dev = resolve_device(device or "auto")
    cfg = load_config(config, overrides)
    model, cfg = model_from_config(cfg, str(weights), device=dev)
    proposals = ModelProposals(model, augmentations=test_augmentations(cfg), top_m=top_m)
    small = load_small_clip(clip, device=dev)
    region = build_clip_region_teacher(small.model, small.preprocess, device=dev)
    scale = float(small.model.logit_scale.detach().exp())
    tau = temperature if temperature is not None else 1.0 / scale
    teacher = CLIPProposalTeacher(
        proposals,
        region,
        load_class_embeddings(embeddings),
        names,
        temperature=tau,
        objectness_weight=objectness_weight,
        nms=nms,
        novel=novel,
        identity=identity,
    )
    return teacher, names, identity
