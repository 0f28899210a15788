"""Text encoders from one-string specs (as given on command lines and in configs).

Spec grammar:

* ``open_clip:ARCH[:TAG_OR_PATH]`` -- open_clip architecture with a pretrained tag (needs
  network on first use) or a local checkpoint; without it the weights are random.
* ``open_clip:local-dir:FOLDER`` -- open_clip's folder format (``open_clip_config.json`` and
  a weights file).
* ``open_clip-config:CONFIG_JSON[:CHECKPOINT]`` -- open_clip model built from an architecture
  json (``model_cfg``), with optional local weights (random otherwise).
* ``hf:NAME_OR_PATH`` -- a Hugging Face ``transformers`` text model.

Paths must not contain ``":"`` (the separator).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ovdet.text.encoder import TextEncoder

ENCODER_KINDS: tuple[str, ...] = ("open_clip", "open_clip-config", "hf")


class EncoderSpec(NamedTuple):
    """A parsed encoder spec: ``kind``, ``target`` (arch, config or model) and ``weights``."""

    kind: str
    target: str
    weights: str | None


def parse_encoder_spec(spec: str) -> EncoderSpec:
    """Splits ``spec`` (see module docstring) into kind, target and optional weights."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in ENCODER_KINDS or not rest:
        raise ValueError(
            f"bad encoder spec {spec!r}: use open_clip:ARCH[:TAG_OR_PATH], "
            "open_clip-config:CONFIG_JSON[:CHECKPOINT] or hf:NAME_OR_PATH"
        )
    if kind == "hf":
        return EncoderSpec(kind, rest, None)
    if kind == "open_clip" and rest.startswith("local-dir:"):
        return EncoderSpec(kind, rest, None)  # open_clip's folder format: config + weights
    target, _, weights = rest.partition(":")
    if not target:
        raise ValueError(f"bad encoder spec {spec!r}: the part after {kind}: is empty")
    return EncoderSpec(kind, target, weights or None)


def build_text_encoder(
    spec: str,
    *,
    device: str | torch.device | None = None,
    pooling: str = "mean",
    seed: int | None = None,
) -> TextEncoder:
    """Builds the encoder named by ``spec``.

    Args:
        spec: encoder spec (see module docstring).
        device: where to encode (default ``cuda`` when available, else ``cpu``).
        pooling: ``"mean"`` or ``"cls"``, for ``hf:`` encoders.
        seed: random initialisation seed for ``open_clip-config:`` without a checkpoint.
    """
    from ovdet.text.hf_encoder import HFTextEncoder
    from ovdet.text.open_clip_encoder import OpenCLIPTextEncoder

    parsed = parse_encoder_spec(spec)
    if parsed.kind == "open_clip":
        return OpenCLIPTextEncoder(parsed.target, parsed.weights, device=device)
    if parsed.kind == "open_clip-config":
        return OpenCLIPTextEncoder.from_config(
            parsed.target, parsed.weights, seed=seed, device=device
        )
    return HFTextEncoder(parsed.target, pooling=pooling, device=device)
