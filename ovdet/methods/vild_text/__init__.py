"""ViLD-text (Gu et al., ICLR 2022): the classifier every ovdet detector starts from.

Region embeddings are scored against class text embeddings, ``cos(e_r, t_c) / tau``, with
a learned background embedding, cross-entropy on base boxes and class-agnostic boxes
(docs/methods.md#vild-text). Its modules are ovdet's core: ``OVRCNN``
(``ovdet.modeling.meta_arch``), ``TextEmbeddingClassifier`` and
``OVFastRCNNOutputLayers`` (``ovdet.modeling.roi_heads``), built by
``configs/common/models/ov_rcnn_*.py``; this package registers the method.
"""

from ovdet.methods.registry import Method, register_method

__all__: list[str] = []

register_method(
    Method(
        name="vild_text",
        title="ViLD-text",
        summary="base boxes, class text embeddings as the classifier",
        source="Gu et al., Open-vocabulary Object Detection via Vision and Language Knowledge "
        "Distillation, ICLR 2022",
        docs="docs/methods.md#vild-text",
        configs={
            "ov_coco": "ov_coco/vild_text_r50_fpn_scratch_lsj_180k.py",
            "ov_lvis": "ov_lvis/vild_text_r50_fpn_mask_scratch_lsj_180k.py",
            "ov_shapes": "ov_shapes/vild_text_small.py",
        },
        variants={
            "ov_coco": {"d2_1x": "ov_coco/vild_text_r50_fpn_d2_1x.py"},
            "ov_lvis": {"d2_4x": "ov_lvis/vild_text_r50_fpn_mask_d2_4x.py"},
        },
    )
)
