"""Backbone building blocks beyond detectron2's defaults."""

from .small_resnet import small_resnet_stages

__all__ = ["small_resnet_stages"]
