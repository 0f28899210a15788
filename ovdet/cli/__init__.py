"""The ``ovdet`` command.

Each subcommand is a thin module of this package (``ovdet.cli.<name>``) with
``main(argv) -> exit code``: it parses arguments and calls the library. This file only
dispatches, importing a subcommand's module when it is used (so ``ovdet env`` does not pay
for building models); ``ovdet bench`` lives with the benchmarks (``ovdet.benchmarks``).

    ovdet env                 versions of torch/CUDA, detectron2 (compiled or fallback), ...
    ovdet embed-text          encode a vocabulary into a (C, D) classifier file
    ovdet detect              text-prompted detection on images / folders / globs
    ovdet pseudo-label        pseudo-boxes (and SAM masks) of many images as one COCO json
    ovdet self-train          rounds of pseudo-label -> merge -> train -> evaluate
    ovdet train               train from a LazyConfig (detectron2 launch, multi-GPU/node)
    ovdet eval                evaluate a trained model on its config's test dataset
    ovdet evaluate            score a COCO-format results json against ground truth
    ovdet data ov-shapes      generate the synthetic OV-Shapes dataset
    ovdet data check          validate a COCO-format dataset before training on it
    ovdet pretrain-clip       train a small CLIP teacher on (image, caption) data
    ovdet pretrain-sam        train the small SAM on base-class masks (box prompts)
    ovdet sam-masks           SAM masks for the boxes of a COCO json (box-only data)
    ovdet extract-regions     compute CLIP teacher embeddings for proposals, to disk
    ovdet demo                the embedded end-to-end demo (OV-Shapes)
    ovdet models              the named models (shipped and registered) with their metrics
    ovdet serve               a local web page to try a model in a browser
    ovdet bench               benchmarks (``ovdet bench ov-shapes``)

``--debug`` anywhere on the command line shows a failing command's traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

from ovdet.utils.errors import INPUT_ERRORS

# subcommand -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "env": ("ovdet.compat.env", "main", "print versions and the detectron2 install kind"),
    "embed-text": ("ovdet.cli.embed_text", "main", "encode a vocabulary to a .npy/.pt file"),
    "detect": ("ovdet.cli.detect", "main", "text-prompted detection on images"),
    "pseudo-label": ("ovdet.cli.pseudo_label", "main", "pseudo-boxes as one COCO json"),
    "self-train": ("ovdet.cli.self_train", "main", "pseudo-label, merge, train: in rounds"),
    "train": ("ovdet.cli.train", "main", "train from a LazyConfig"),
    "eval": ("ovdet.cli.train", "eval_main", "evaluate a model from a LazyConfig"),
    "evaluate": ("ovdet.cli.evaluate", "main", "score COCO results against GT"),
    "data": ("ovdet.cli.data", "main", "generate (ov-shapes) or check (check) a dataset"),
    "pretrain-clip": ("ovdet.cli.pretrain_clip", "main", "train a small CLIP teacher"),
    "pretrain-sam": ("ovdet.cli.pretrain_sam", "main", "train the small SAM on base masks"),
    "sam-masks": ("ovdet.cli.sam_masks", "main", "SAM masks for the boxes of a COCO json"),
    "extract-regions": ("ovdet.cli.extract_regions", "main", "teacher embeddings of proposals"),
    "demo": ("ovdet.cli.demo", "main", "end-to-end OV-Shapes demo"),
    "models": ("ovdet.cli.models", "main", "list the named models and their metrics"),
    "serve": ("ovdet.cli.serve", "main", "a local web page to try a model in a browser"),
    "bench": ("ovdet.benchmarks", "main", "benchmarks (ov-shapes)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: ovdet <command> [options]", "", "commands:"]
    for name, (_, _, help_) in COMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_}")
    lines.append("")
    lines.append("Run `ovdet <command> --help` for a command's options.")
    return "\n".join(lines)


def error_message(exc: BaseException) -> str:
    """One line for a failed command: the exception's message (a KeyError's without quotes),
    or its type when it has none."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    else:
        text = str(exc)
    text = " ".join(text.split())  # one line
    return text or type(exc).__name__


def _pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` (anywhere before a ``--``) from ``argv``; ``$OVDET_DEBUG=1`` too."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end] or os.environ.get("OVDET_DEBUG", "") not in ("", "0")
    return [a for i, a in enumerate(argv) if i >= end or a != "--debug"], debug


def main(argv: list[str] | None = None) -> int:
    """Run an ``ovdet`` command; returns its exit status.

    A command that fails prints one line ``ovdet <command>: error: <message>`` and exits with
    2 (bad input: a missing or wrong file, field or value; the message names it and says what
    to do) or 1 (any other failure); ``--debug`` (or ``OVDET_DEBUG=1``) shows the traceback
    instead. Ctrl-C exits with 130.
    """
    argv, debug = _pop_debug(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from ovdet import __version__

        print(f"ovdet {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ovdet: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        rc = func(rest)
    except KeyboardInterrupt:
        print(f"ovdet {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line per failure; --debug for the traceback
        if debug:
            raise
        print(f"ovdet {name}: error: {error_message(exc)}", file=sys.stderr)
        print("  (run again with --debug for the traceback)", file=sys.stderr)
        return 2 if isinstance(exc, INPUT_ERRORS) else 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
