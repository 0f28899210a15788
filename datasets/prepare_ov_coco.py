"""Derive the OV-COCO annotation files (48 base / 17 novel) from COCO 2017.

Reads ``<coco-root>/annotations/instances_{train,val}2017.json`` and writes to ``--out``
(default ``<coco-root>/annotations/ov_coco``):

* ``instances_train2017_base.json``  48 base classes, base annotations only, all images
* ``instances_train2017_all.json``   65 OV-COCO classes (oracle)
* ``instances_val2017_all.json``     val2017 restricted to the 65 classes

Usage: ``python datasets/prepare_ov_coco.py --coco-root datasets/coco``
"""

from __future__ import annotations

import argparse
import sys

from ovdet.data.ov_splits import prepare_ov_coco


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco-root", required=True, help="folder holding annotations/")
    parser.add_argument("--out", default=None, help="output folder (default: annotations/ov_coco)")
    args = parser.parse_args(argv)
    try:
        written = prepare_ov_coco(args.coco_root, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"prepare_ov_coco: error: {e}", file=sys.stderr)
        return 2
    for key, path in written.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
