"""``ovdet demo`` (moving here from ``ovdet.demo``)."""

from ovdet.demo import main

__all__ = ["main"]
