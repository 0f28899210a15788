"""Built-in category metadata: COCO 2017, the OV-COCO 48/17 split, LVIS v1.

COCO names and ids are those of the official ``instances_*2017.json`` files. The OV-COCO
split is the one of OVR-CNN / ViLD (docs/methods.md#open-vocabulary-detection-protocol).
LVIS v1 categories (id, name, synonyms, frequency r/c/f) ship as
``ovdet/assets/lvis_v1_categories.json`` (CC BY 4.0).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

# (id, name) of the 80 COCO 2017 categories, in id order.
COCO_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"),
    (2, "bicycle"),
    (3, "car"),
    (4, "motorcycle"),
    (5, "airplane"),
    (6, "bus"),
    (7, "train"),
    (8, "truck"),
    (9, "boat"),
    (10, "traffic light"),
    (11, "fire hydrant"),
    (13, "stop sign"),
    (14, "parking meter"),
    (15, "bench"),
    (16, "bird"),
    (17, "cat"),
    (18, "dog"),
    (19, "horse"),
    (20, "sheep"),
    (21, "cow"),
    (22, "elephant"),
    (23, "bear"),
    (24, "zebra"),
    (25, "giraffe"),
    (27, "backpack"),
    (28, "umbrella"),
    (31, "handbag"),
    (32, "tie"),
    (33, "suitcase"),
    (34, "frisbee"),
    (35, "skis"),
    (36, "snowboard"),
    (37, "sports ball"),
    (38, "kite"),
    (39, "baseball bat"),
    (40, "baseball glove"),
    (41, "skateboard"),
    (42, "surfboard"),
    (43, "tennis racket"),
    (44, "bottle"),
    (46, "wine glass"),
    (47, "cup"),
    (48, "fork"),
    (49, "knife"),
    (50, "spoon"),
    (51, "bowl"),
    (52, "banana"),
    (53, "apple"),
    (54, "sandwich"),
    (55, "orange"),
    (56, "broccoli"),
    (57, "carrot"),
    (58, "hot dog"),
    (59, "pizza"),
    (60, "donut"),
    (61, "cake"),
    (62, "chair"),
    (63, "couch"),
    (64, "potted plant"),
    (65, "bed"),
    (67, "dining table"),
    (70, "toilet"),
    (72, "tv"),
    (73, "laptop"),
    (74, "mouse"),
    (75, "remote"),
    (76, "keyboard"),
    (77, "cell phone"),
    (78, "microwave"),
    (79, "oven"),
    (80, "toaster"),
    (81, "sink"),
    (82, "refrigerator"),
    (84, "book"),
    (85, "clock"),
    (86, "vase"),
    (87, "scissors"),
    (88, "teddy bear"),
    (89, "hair drier"),
    (90, "toothbrush"),
)

# OV-COCO split (COCO category ids): 48 base classes with box labels in training,
# 17 novel classes seen only at test time. The other 15 COCO classes are unused.
OV_COCO_BASE_IDS: tuple[int, ...] = (
    1,
    2,
    3,
    4,
    7,
    8,
    9,
    15,
    16,
    19,
    20,
    23,
    24,
    25,
    27,
    31,
    33,
    34,
    35,
    38,
    42,
    44,
    48,
    50,
    51,
    52,
    53,
    54,
    55,
    56,
    57,
    59,
    60,
    62,
    65,
    70,
    72,
    73,
    74,
    75,
    78,
    79,
    80,
    82,
    84,
    85,
    86,
    90,
)
OV_COCO_NOVEL_IDS: tuple[int, ...] = (
    5,
    6,
    17,
    18,
    21,
    22,
    28,
    32,
    36,
    41,
    47,
    49,
    61,
    63,
    76,
    81,
    87,
)

_COCO_NAME = dict(COCO_CATEGORIES)
COCO_CLASS_NAMES: tuple[str, ...] = tuple(name for _, name in COCO_CATEGORIES)
OV_COCO_BASE_NAMES: tuple[str, ...] = tuple(_COCO_NAME[i] for i in OV_COCO_BASE_IDS)
OV_COCO_NOVEL_NAMES: tuple[str, ...] = tuple(_COCO_NAME[i] for i in OV_COCO_NOVEL_IDS)
# the 65 OV-COCO classes in COCO id order (the generalised evaluation vocabulary)
OV_COCO_IDS: tuple[int, ...] = tuple(sorted(OV_COCO_BASE_IDS + OV_COCO_NOVEL_IDS))
OV_COCO_NAMES: tuple[str, ...] = tuple(_COCO_NAME[i] for i in OV_COCO_IDS)

_LVIS_FILE = Path(__file__).resolve().parent.parent / "assets" / "lvis_v1_categories.json"


@lru_cache(maxsize=1)
def lvis_categories() -> tuple[dict, ...]:
    """The 1203 LVIS v1 categories in id order.

    Each is a dict with ``id``, ``name`` (e.g. ``"aerosol_can"``), ``synonyms``,
    ``frequency`` (``"r"``, ``"c"`` or ``"f"``), ``image_count``, ``instance_count``, ``def``.
    """
    with open(_LVIS_FILE) as f:
        return tuple(json.load(f)["categories"])


def lvis_class_names(readable: bool = True) -> list[str]:
    """LVIS v1 names in id order; ``readable`` turns ``"aerosol_can"`` into ``"aerosol can"``."""
    return [readable_name(c["name"]) if readable else c["name"] for c in lvis_categories()]


def lvis_synonyms(readable: bool = True) -> list[list[str]]:
    """Per LVIS class, its synonyms (first = the name), for synonym-averaged embeddings."""
    out = []
    for c in lvis_categories():
        syn = c["synonyms"] or [c["name"]]
        out.append([readable_name(s) if readable else s for s in syn])
    return out


def lvis_rare_names(readable: bool = True) -> list[str]:
    """Names of the 337 rare LVIS classes (``frequency == "r"``): OV-LVIS novel classes."""
    return [
        readable_name(c["name"]) if readable else c["name"]
        for c in lvis_categories()
        if c["frequency"] == "r"
    ]


def readable_name(name: str) -> str:
    """LVIS-style names to prompt-ready ones: ``"tennis_racket"`` -> ``"tennis racket"``."""
    return name.replace("_", " ").strip()


def lvis_train_image_counts(exclude_rare: bool = True) -> list[int]:
    """LVIS v1 train image count per class (id order); 0 for rare classes if ``exclude_rare``.

    With ``exclude_rare`` these are the counts of the OV-LVIS base training json, the
    sampling weights of the federated loss (``image_count ** 0.5``): rare (novel) classes then
    are never sampled, as positives or negatives, so no gradient touches their embeddings.
    """
    return [
        0 if exclude_rare and c["frequency"] == "r" else int(c["image_count"])
        for c in lvis_categories()
    ]
