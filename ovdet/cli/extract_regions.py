"""``ovdet extract-regions`` (moving here from ``ovdet.teacher.extract``)."""

from ovdet.teacher.extract import main

__all__ = ["main"]
