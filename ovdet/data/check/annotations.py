"""Checks of the ``annotations`` entries: ids and references to images and categories,
``iscrowd``; boxes, areas and masks through :mod:`.boxes` and :mod:`.segmentation`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ovdet.data.check.boxes import box_heuristics, check_box, outside_severity
from ovdet.data.check.fields import At, id_problem, is_int_id, short
from ovdet.data.check.report import Collector
from ovdet.data.check.segmentation import check_area, check_segmentation, polygon_checks


def check_annotations(
    entries: list,
    imgs: dict[Any, dict],
    cats: dict[Any, tuple[int, str]],
    c: Collector,
    is_lvis: bool,
) -> tuple[set, set]:
    """Per-annotation checks; returns (category ids used, image ids with annotations)."""
    used_cats: set = set()
    with_anns: set = set()
    ann_ids: dict[Any, int] = {}
    # for the file-level box heuristics: (x, y, w, h, W, H) of valid boxes in known images
    geometry: list[tuple[float, float, float, float, float, float]] = []
    outside: list[tuple[str, str]] = []  # (severity, example) of boxes outside their image
    n_masks = n_no_mask = 0
    polygons: list[tuple[At, float | None, list[list]]] = []  # checked after the loop
    for i, ann in enumerate(entries):
        if not isinstance(ann, Mapping):
            c.add(
                "annotation.not_object",
                "error",
                "annotations entries must be json objects",
                f"annotations[{i}] = {short(ann)}",
            )
            continue
        aid = ann.get("id")
        iid = ann.get("image_id")
        where = At("annotations", i, aid, iid)
        # ids
        if "id" not in ann:
            c.add(
                "annotation.missing_id",
                "error",
                "annotations need a unique integer 'id' (detectron2's loader requires it)",
                where,
            )
        elif not is_int_id(aid):
            c.add(
                "annotation.id_type",
                "error",
                "annotation ids must be integers",
                f"{where}: id is {id_problem(aid)}",
            )
        elif aid in ann_ids:
            c.add(
                "annotation.duplicate_id",
                "error",
                "annotation ids must be unique (detectron2's loader refuses duplicates; "
                "pycocotools evaluates one of them twice); renumber them",
                f"{where} repeats id {aid} of annotations[{ann_ids[aid]}]",
            )
        else:
            ann_ids[aid] = i
            if aid == 0:
                c.add(
                    "annotation.id_zero",
                    "warning",
                    "annotation id 0: pycocotools' COCOeval never counts a match to it (AP "
                    "too low in evaluators other than ovdet's); number annotations from 1",
                    where,
                )
        img = None
        if "image_id" not in ann:
            c.add("annotation.missing_image_id", "error", "annotations need an 'image_id'", where)
        elif not is_int_id(iid):
            c.add(
                "annotation.image_id_type",
                "error",
                "'image_id' must be the integer id of an image",
                f"{where}: image_id is {id_problem(iid)}",
            )
        elif iid not in imgs:
            c.add(
                "annotation.unknown_image",
                "error",
                "'image_id' refers to no image of 'images' (the annotation would be lost)",
                f"{where}: image_id={iid}",
            )
        else:
            img = imgs[iid]
            with_anns.add(iid)
        cid = ann.get("category_id")
        if "category_id" not in ann:
            c.add(
                "annotation.missing_category_id",
                "error",
                "annotations need a 'category_id'",
                where,
            )
        elif not is_int_id(cid):
            c.add(
                "annotation.category_id_type",
                "error",
                "'category_id' must be the integer id of a category",
                f"{where}: category_id is {id_problem(cid)}",
            )
        elif cid not in cats:
            c.add(
                "annotation.unknown_category",
                "error",
                "'category_id' refers to no category of 'categories'",
                f"{where}: category_id={cid}",
            )
        else:
            used_cats.add(cid)
        # iscrowd
        crowd = ann.get("iscrowd", None)
        if crowd is None:
            if not is_lvis:
                c.add(
                    "iscrowd.missing",
                    "warning",
                    "annotations without 'iscrowd' (taken as 0; pycocotools' COCOeval needs it)",
                    where,
                )
            crowd = 0
        elif crowd not in (0, 1) or isinstance(crowd, float):
            c.add(
                "iscrowd.value",
                "error",
                "'iscrowd' must be 0 or 1",
                f"{where}: iscrowd={short(crowd)}",
            )
            crowd = 0
        # box
        box = check_box(ann, where, c)
        if box is not None and img is not None and img["width"] and img["height"]:
            W, H = img["width"], img["height"]
            x, y, w, h = box
            geometry.append((x, y, w, h, W, H))
            severity = outside_severity(x, y, w, h, W, H)
            if severity is not None:
                outside.append(
                    (severity, f"{where}: bbox={short(list(box))} in a {W:g}x{H:g} image")
                )
        # area and segmentation
        box_area = box[2] * box[3] if box is not None else None
        area = check_area(ann, where, box_area, bool(crowd), c)
        has_mask = check_segmentation(ann, where, img, c)
        if has_mask is True:
            n_masks += 1
            segm = ann["segmentation"]
            if isinstance(segm, list):
                valid = [p for p in segm if len(p) >= 6 and len(p) % 2 == 0]
                polygons.append((where, area, valid))
        elif has_mask is False:
            n_no_mask += 1
    polygon_checks(polygons, c)
    box_heuristics(geometry, outside, c)
    if n_masks and n_no_mask:
        c.add(
            "segmentation.partial",
            "warning",
            f"{n_no_mask} annotations have no mask while {n_masks} have one: a mask head "
            "learns only from those with masks",
            None,
        )
        c.set_count("segmentation.partial", n_no_mask)
    return used_cats, with_anns
