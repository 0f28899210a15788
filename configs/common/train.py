"""Shared training settings (``cfg.train``), read by ``ovdet.engine.train``."""

train = dict(
    output_dir="./output",
    # a detectron2-format checkpoint (.pth / .pkl) to start from, e.g. ImageNet R50
    init_checkpoint="",
    max_iter=90000,
    amp=dict(enabled=False),  # automatic mixed precision, CUDA only
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    checkpointer=dict(period=5000, max_to_keep=3),
    eval_period=5000,
    log_period=20,
    device="auto",  # CUDA when present, else cpu; "cuda" without CUDA is an error
    seed=-1,
)
