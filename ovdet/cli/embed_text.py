"""``ovdet embed-text``: encode a vocabulary into a (C, D) class-embedding file.

Example::

    ovdet embed-text --encoder open_clip:ViT-B-32:/ckpt/clip_b32.pt --vocab lvis --synonyms \\
        --templates ensemble --out lvis_clip_b32.npy

writes ``lvis_clip_b32.npy`` (float32, row i = class i) and ``lvis_clip_b32.names.txt``.
"""

from __future__ import annotations

import argparse
import sys

from ovdet.text.cache import VocabularyCache
from ovdet.text.embeddings import build_class_embeddings, names_path, save_class_embeddings
from ovdet.text.factory import build_text_encoder, parse_encoder_spec
from ovdet.text.templates import TEMPLATE_SET_NAMES, get_templates
from ovdet.text.vocabulary import BUILTIN_VOCABULARIES, lvis_synonym_lists, resolve_vocabulary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovdet embed-text",
        description="Encode class names into L2-normalised (C, D) float32 text embeddings.",
    )
    parser.add_argument(
        "--encoder",
        required=True,
        help="open_clip:ARCH[:TAG_OR_PATH] | open_clip-config:CONFIG_JSON[:CHECKPOINT] | "
        "hf:NAME_OR_PATH",
    )
    parser.add_argument(
        "--vocab",
        required=True,
        help=f"{' | '.join(BUILTIN_VOCABULARIES)} | names.txt | 'cat,dog'",
    )
    parser.add_argument(
        "--templates", default="ensemble", choices=TEMPLATE_SET_NAMES, help="prompt set"
    )
    parser.add_argument(
        "--synonyms",
        action="store_true",
        help="average over LVIS synonyms (the vocabulary must consist of LVIS categories)",
    )
    parser.add_argument("--out", required=True, help="output .npy, .pt or .safetensors file")
    parser.add_argument("--batch-size", type=int, default=256, help="prompts per forward pass")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    parser.add_argument("--cache-dir", default=None, help="reuse/store results in this cache")
    parser.add_argument("--pooling", default="mean", choices=("mean", "cls"), help="hf: pooling")
    parser.add_argument(
        "--seed", type=int, default=None, help="init seed of a random open_clip-config model"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = parse_encoder_spec(args.encoder)
        names = resolve_vocabulary(args.vocab)
        classes = lvis_synonym_lists(names) if args.synonyms else names
        templates = get_templates(args.templates)
        if spec.kind.startswith("open_clip") and spec.weights is None:
            print(
                f"ovdet embed-text: note: {args.encoder} has no weights, the text tower is "
                "randomly initialised",
                file=sys.stderr,
            )
        encoder = build_text_encoder(
            args.encoder, device=args.device, pooling=args.pooling, seed=args.seed
        )
        if args.cache_dir:
            cache = VocabularyCache(args.cache_dir)
            embeddings = cache.get(encoder, classes, templates, batch_size=args.batch_size)
        else:
            embeddings = build_class_embeddings(
                encoder, classes, templates, batch_size=args.batch_size
            )
        out = save_class_embeddings(args.out, embeddings, names)
    except (ValueError, FileNotFoundError) as err:
        print(f"ovdet embed-text: error: {err}", file=sys.stderr)
        return 2
    num_classes, dim = embeddings.shape
    print(
        f"wrote {num_classes} x {dim} float32 embeddings ({args.templates} templates"
        f"{', LVIS synonyms' if args.synonyms else ''}) to {out}, names to {names_path(out)}"
    )
    return 0
