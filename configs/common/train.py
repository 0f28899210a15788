"""Shared training settings (``cfg.train``), read by ``ovdet.engine.train``."""

train = dict(
    output_dir="./output",
    # a detectron2-format checkpoint (.pth / .pkl / .safetensors) to start from; it must fit
    # the whole model unless init_partial names the part it initialises
    init_checkpoint="",
    # prefixes of the model's parameters that init_checkpoint initialises alone, e.g.
    # "backbone.bottom_up" for an ImageNet R-50 (the rest keep their initialisation); a
    # checkpoint that fits the whole model (a trained detector) still loads whole
    init_partial=None,
    max_iter=90000,
    amp=dict(enabled=False),  # automatic mixed precision, CUDA only
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    # a checkpoint every `period` iterations (and at the end); a killed run resumes from the
    # newest intact one (`ovdet train --resume`)
    checkpointer=dict(period=5000, max_to_keep=3),
    eval_period=5000,
    log_period=20,
    device="auto",  # CUDA when present, else cpu; "cuda" without CUDA is an error
    seed=-1,
    # check the training datasets (json fields, ids, boxes, image files exist) before training;
    # `ovdet data check GT.json --images DIR` gives the full report
    check_data=True,
)
