"""``ovdet pretrain-clip`` (moving here from ``ovdet.teacher.pretrain``)."""

from ovdet.teacher.pretrain import main

__all__ = ["main"]
