"""What a benchmark method's preparation may use (a seed's resources)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["MethodContext"]


@dataclass(frozen=True)
class MethodContext:
    """What a method's ``prepare`` may use.

    Attributes:
        name: the method name.
        seed: the run's seed.
        data_root: dataset root (``split.json``; see ``ovdet.data.synthetic.catalog``).
        teacher_checkpoint: the pretrained CLIP teacher of this seed (``teacher.pt``, with
            its open_clip config ``teacher.json`` beside it; load with
            ``ovdet.teacher.small_clip.load_small_clip``).
        embeddings: class text embeddings of every class (``.names.txt`` sidecar).
        work_dir: this method's output folder for this seed (extra inputs go here).
        device: "cpu" or "cuda".
        image_size: training / test image size.
    """

    name: str
    seed: int
    data_root: Path
    teacher_checkpoint: Path
    embeddings: Path
    work_dir: Path
    device: str
    image_size: int
