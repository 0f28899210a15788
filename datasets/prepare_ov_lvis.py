"""Derive the OV-LVIS annotation files (rare classes = novel) from LVIS v1.

Reads ``<lvis-root>/lvis_v1_{train,val}.json`` and writes to ``--out`` (default
``<lvis-root>/ov_lvis``):

* ``lvis_v1_train_base.json``  annotations of the 337 rare classes removed; all 1203
  categories still listed (so contiguous ids match 1203-row embedding files)
* ``lvis_v1_val.json``         annotations unchanged

Both get ``file_name`` (``train2017/...`` or ``val2017/...``, from ``coco_url``) so that
images are found under ``<datasets>/coco``.

Usage: ``python datasets/prepare_ov_lvis.py --lvis-root datasets/lvis``
"""

from __future__ import annotations

import argparse
import sys

from ovdet.data.ov_splits import prepare_ov_lvis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lvis-root", required=True, help="folder holding lvis_v1_*.json")
    parser.add_argument("--out", default=None, help="output folder (default: <lvis-root>/ov_lvis)")
    args = parser.parse_args(argv)
    try:
        written = prepare_ov_lvis(args.lvis_root, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"prepare_ov_lvis: error: {e}", file=sys.stderr)
        return 2
    for key, path in written.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
