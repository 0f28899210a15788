"""``ovdet models``: the named models (shipped bundles and registered model cards).

    ovdet models [--json]

Lists each model with its kind (``bundle``: shipped with ovdet; ``card``: a user's model
card found through ``$OVDET_MODELS``), its classes, its measured box AP50 on base / novel
classes and its description; ``--json`` prints every field of
:class:`ovdet.model_zoo.ModelSpec`. Any name listed works with ``ovdet detect --model NAME``,
``ovdet demo --model NAME`` (bundles) and ``OVPredictor.from_pretrained(NAME)``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["build_parser", "format_table", "main"]

_CARD_HELP = """\
a model card (register it: export OVDET_MODELS=/path/cards; paths relative to the card):
  {
    "name": "my-lvis-vild",
    "description": "ViLD on LVIS, R50-FPN mask 4x, my run",
    "config": "configs/ov_lvis/vild_r50_fpn_mask_d2_4x.py",
    "weights": "output/vild_lvis/model_final.pth",
    "text_encoder": "open_clip:ViT-B-32:clip/ViT-B-32.pt",
    "vocabulary": "lvis",
    "metrics": {"APr": 16.1, "AP": 25.5, "dataset": "LVIS v1 val"}
  }
required: name, config, weights; instead of text_encoder: embeddings (+ names) from
ovdet embed-text; optional: description, source, templates, base, novel, overrides,
image_size. The config file is Python and is executed: register only configs you trust."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet models",
        description="The named models: shipped bundles, then the model cards of $OVDET_MODELS "
        "(card files or folders of them, separated by the path separator), with their "
        "measured metrics.",
        epilog=_CARD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print every field as JSON")
    return p


def _record(spec, default: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "default": spec.name == default,
        "kind": spec.kind,
        "description": spec.description,
        "path": str(spec.path),
        "classes": spec.classes,
        "base": spec.base,
        "novel": spec.novel,
        "metrics": spec.metrics,
        "image_size": spec.image_size,
        "source": spec.source,
    }


def _classes(record: dict[str, Any]) -> str:
    if record["classes"] is None:
        return "--vocab"
    text = str(len(record["classes"]))
    if record["novel"]:
        text += f" ({len(record['novel'])} novel)"
    return text


def _ap(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "n/a"


def format_table(records: list[dict[str, Any]]) -> str:
    """The table ``ovdet models`` prints: one line per model, then what the numbers are."""
    width = max([len(r["name"]) for r in records] + [4]) + 2
    lines = [
        f"{'name':<{width}} {'kind':<7} {'classes':<13} {'AP50 base':>9} {'AP50 novel':>10}  "
        "description"
    ]
    for r in records:
        name = r["name"] + (" *" if r["default"] else "")
        m = r["metrics"]
        lines.append(
            f"{name:<{width}} {r['kind']:<7} {_classes(r):<13} {_ap(m.get('AP50_base')):>9} "
            f"{_ap(m.get('AP50_novel')):>10}  {r['description']}"
        )
    lines += [
        "",
        "* the default model (ovdet detect / serve / demo without --model).",
        "Box AP50 in percent, every class in the vocabulary: bundles on the val split of their "
        "training run, as shipped (fp16); cards as their card states (`ovdet models --json`).",
        'Use one: ovdet detect --model NAME --vocab "a,b" --input IMAGES --output DIR. Register '
        "your own checkpoints with model cards listed in $OVDET_MODELS.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``ovdet models``: see the module docstring and ``--help``."""
    args = build_parser().parse_args(argv)
    from ovdet.model_zoo import DEFAULT_MODEL, list_models

    records = [_record(spec, DEFAULT_MODEL) for spec in list_models()]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(format_table(records))
    return 0
