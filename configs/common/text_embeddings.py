"""Class text embedding files the OV-COCO / OV-LVIS configs expect (local files, no downloads).

Each file is a (C, D) CLIP ViT-B/32 text classifier under ``$OVDET_DATASETS/metadata/``, row i
the i-th category in id order (80 COCO rows, 1203 LVIS v1 rows). Its name says which prompts
made it: ``<vocab>_clip_<prompts>.npy``. Make them with ``ovdet embed-text`` (the file names
and commands below), or take the published files where they exist:

======================================  =====================================================
file                                     prompts (``ovdet embed-text ...``)
======================================  =====================================================
``coco_clip_a+cname.npy``               "a {}" (Detic's file; ``--vocab coco --templates detic``)
``lvis_v1_clip_a+cname.npy``            "a {}" (Detic's file; ``--vocab lvis --templates detic``)
``coco_clip_vild.npy``                  ViLD's 63 templates (``--vocab coco --templates vild``)
``lvis_v1_clip_vild+syn.npy``           ViLD's 63 templates x LVIS synonyms (``--vocab lvis
                                         --templates vild --synonyms``; ViLD's
                                         ``clip_synonym_prompt.npy``)
``coco_clip_a+photo+cname.npy``         "a photo of a {}" (RKD's file; ``--vocab coco
                                         --templates rkd``)
``lvis_v1_clip_a+photo+cname.npy``      "a photo of a {}" (RKD's file; ``--vocab lvis
                                         --templates rkd``)
``coco_clip_photo.npy``                 "a photo of a {}." (HierKD's ``data/generate_cls_head.py``;
                                         ``--vocab coco --templates photo``)
``lvis_v1_clip_photo.npy``              "a photo of a {}." (``--vocab lvis --templates photo``)
======================================  =====================================================

with ``--encoder open_clip:ViT-B-32:openai`` (or a local ``open_clip:ViT-B-32:/path/clip.pt``).
The configs also set ``model.templates`` to the same prompts, so a vocabulary given by names
at run time (``OVPredictor.predict(..., vocabulary=[...])``) is encoded like the training one.
"""

from ovdet.data import datasets_root

METADATA = datasets_root() / "metadata"


def embedding_file(vocab: str, prompts: str) -> str:
    """``$OVDET_DATASETS/metadata/<vocab>_clip_<prompts>.npy`` (see the module docstring)."""
    return str(METADATA / f"{vocab}_clip_{prompts}.npy")


COCO_DETIC = embedding_file("coco", "a+cname")
LVIS_DETIC = embedding_file("lvis_v1", "a+cname")
COCO_VILD = embedding_file("coco", "vild")
LVIS_VILD_SYNONYMS = embedding_file("lvis_v1", "vild+syn")
COCO_RKD = embedding_file("coco", "a+photo+cname")
LVIS_RKD = embedding_file("lvis_v1", "a+photo+cname")
COCO_PHOTO = embedding_file("coco", "photo")
LVIS_PHOTO = embedding_file("lvis_v1", "photo")

# file name -> (ovdet template set, LVIS synonyms): what made each file
EMBEDDING_PROMPTS = {
    "coco_clip_a+cname.npy": ("detic", False),
    "lvis_v1_clip_a+cname.npy": ("detic", False),
    "coco_clip_vild.npy": ("vild", False),
    "lvis_v1_clip_vild+syn.npy": ("vild", True),
    "coco_clip_a+photo+cname.npy": ("rkd", False),
    "lvis_v1_clip_a+photo+cname.npy": ("rkd", False),
    "coco_clip_photo.npy": ("photo", False),
    "lvis_v1_clip_photo.npy": ("photo", False),
}
