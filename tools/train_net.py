#!/usr/bin/env python3
"""Train or evaluate an ovdet LazyConfig; the same as ``ovdet train``.

    python tools/train_net.py --config-file configs/ov_coco/vild_text_r50_fpn_scratch_lsj_180k.py \
        --num-gpus 8 [--resume] [--eval-only] [key=value ...]
"""

import sys

from ovdet.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
