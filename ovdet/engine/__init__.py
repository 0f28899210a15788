"""Training glue on detectron2: LazyConfig train/eval loops (``ovdet.engine.train``)."""
