"""Where the distillation configs expect their inputs (local files only, no downloads).

- CLIP ViT-B/32 weights (HierKD's caption text tower and online region teacher):
  ``$OVDET_WEIGHTS/clip_vit_b32.pt`` (an open_clip checkpoint file; with a network,
  ``open_clip.create_model("ViT-B-32", pretrained="openai")`` then
  ``torch.save(model.state_dict(), path)`` makes one).
- Region stores written by ``ovdet extract-regions`` under ``$OVDET_DATASETS/teacher/``, one per
  proposal selection, named after it (:data:`REGION_STORES`; :func:`extract_command` gives the
  command that writes each):

  ``*_vitb32_vild300``
      ViLD: the top 300 proposals of the RPN of ViLD-text (trained on base boxes) per image,
      each embedded from crops at 1.0x and 1.5x (tensorflow/tpu ``vild_resnet.yaml``:
      ``max_num_rois: 300``; the paper's 1.0x + 1.5x crops).
  ``*_vitb32_rkd5``
      RKD: the top 5 proposals after class-agnostic NMS at IoU 0.5 with the "+1" pixel
      convention, each embedded from one 1.0x crop (hanoonaR/object-centric-ovd
      ``tools/get_rkd_clip_feat.py``, ``NUM_DISTIL_PROP: 5``). RKD's proposals come from MAVL
      (a multi-modal ViT, not in ovdet): give them as ``--proposals FILE`` when you have them;
      the command below takes those of the RKD base model's RPN instead.
  ``*_vitb32_top32``
      ovdet's detectron2-standard recipe: the top 32 proposals of the ViLD-text ``d2`` RPN,
      crops at 1.0x and 1.5x.

  The store's metadata records the teacher, the crop scales, M and the proposal source (the
  NMS threshold and ``nms_legacy_plus_one`` included), so a store is only ever resumed with
  the same selection.
"""

import os

from ovdet.data import datasets_root

WEIGHTS = os.environ.get("OVDET_WEIGHTS", "weights")
CLIP_VIT_B32 = os.path.join(WEIGHTS, "clip_vit_b32.pt")
TEACHER_ROOT = datasets_root() / "teacher"

# store name -> how it is made (`ovdet extract-regions` options)
REGION_STORES = {
    "ov_coco_train_base_vitb32_vild300": dict(
        dataset="ov_coco_train_base",
        rpn_config="ov_coco/vild_text_r50_fpn_scratch_lsj_180k.py",
        top_m=300,
        scales=(1.0, 1.5),
        nms=None,
        nms_legacy_plus_one=False,
    ),
    "ov_coco_train_base_vitb32_rkd5": dict(
        dataset="ov_coco_train_base",
        rpn_config="ov_coco/rkd_base_r50_c4_1x.py",
        top_m=5,
        scales=(1.0,),
        nms=0.5,
        nms_legacy_plus_one=True,
    ),
    "ov_coco_train_base_vitb32_top32": dict(
        dataset="ov_coco_train_base",
        rpn_config="ov_coco/vild_text_r50_fpn_d2_1x.py",
        top_m=32,
        scales=(1.0, 1.5),
        nms=None,
        nms_legacy_plus_one=False,
    ),
    "ov_lvis_train_base_vitb32_vild300": dict(
        dataset="ov_lvis_train_base",
        rpn_config="ov_lvis/vild_text_r50_fpn_mask_scratch_lsj_180k.py",
        top_m=300,
        scales=(1.0, 1.5),
        nms=None,
        nms_legacy_plus_one=False,
    ),
    "ov_lvis_train_base_vitb32_rkd5": dict(
        dataset="ov_lvis_train_base",
        rpn_config="ov_lvis/rkd_base_r50_fpn_mask_1x.py",
        top_m=5,
        scales=(1.0,),
        nms=0.5,
        nms_legacy_plus_one=True,
    ),
    "ov_lvis_train_base_vitb32_top32": dict(
        dataset="ov_lvis_train_base",
        rpn_config="ov_lvis/vild_text_r50_fpn_mask_d2_4x.py",
        top_m=32,
        scales=(1.0, 1.5),
        nms=None,
        nms_legacy_plus_one=False,
    ),
}


def store_path(name: str) -> str:
    """``$OVDET_DATASETS/teacher/<name>`` of a store of :data:`REGION_STORES`."""
    if name not in REGION_STORES:
        raise KeyError(f"unknown region store {name!r}; known: {sorted(REGION_STORES)}")
    return str(TEACHER_ROOT / name)


def extract_command(name: str) -> list[str]:
    """The ``ovdet extract-regions`` arguments that write store ``name`` (after its RPN config
    was trained into ``output/<config without .py>/model_final.pth``)."""
    spec = REGION_STORES[name]
    rpn = spec["rpn_config"]
    args = [
        "--dataset",
        spec["dataset"],
        "--config",
        f"configs/{rpn}",
        "--weights",
        f"output/{rpn[: -len('.py')]}/model_final.pth",
        "--teacher",
        CLIP_VIT_B32,
        "--teacher-model",
        "ViT-B-32",
        "--top-m",
        str(spec["top_m"]),
        "--scales",
        ",".join(str(s) for s in spec["scales"]),
    ]
    if spec["nms"] is not None:
        args += ["--nms", str(spec["nms"])]
    if spec["nms_legacy_plus_one"]:
        args.append("--nms-legacy-plus-one")
    return [*args, "--out", store_path(name)]


OV_COCO_STORE_VILD = store_path("ov_coco_train_base_vitb32_vild300")
OV_COCO_STORE_RKD = store_path("ov_coco_train_base_vitb32_rkd5")
OV_COCO_STORE_TOP32 = store_path("ov_coco_train_base_vitb32_top32")
OV_LVIS_STORE_VILD = store_path("ov_lvis_train_base_vitb32_vild300")
OV_LVIS_STORE_RKD = store_path("ov_lvis_train_base_vitb32_rkd5")
OV_LVIS_STORE_TOP32 = store_path("ov_lvis_train_base_vitb32_top32")
