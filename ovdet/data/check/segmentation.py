"""Checks of annotation masks and areas: polygons, RLE, ``area`` against the box and the
polygons."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np

from ovdet.data.check.fields import NUMBER_TYPES, At, all_numbers, is_int_id, short
from ovdet.data.check.report import Collector


def check_area(
    ann: Mapping, where: At, box_area: float | None, crowd: bool, c: Collector
) -> float | None:
    """Returns the area to compare with the polygons' (None: nothing to compare)."""
    if "area" not in ann:
        c.add(
            "area.missing",
            "warning",
            "annotations without 'area' (training does not need it; COCO evaluation uses it "
            "for small/medium/large: ovdet evaluate computes it from the mask or box)",
            where,
        )
        return None
    area = ann["area"]
    if type(area) not in NUMBER_TYPES or not math.isfinite(area) or area < 0:
        c.add(
            "area.type",
            "error",
            "'area' must be a non-negative number (pixels of the object's mask)",
            f"{where}: area={short(area)}",
        )
        return None
    if box_area is None:
        return None
    if area == 0:
        c.add(
            "area.zero",
            "warning",
            "'area' 0 for a non-empty box (COCO evaluation counts the object as small)",
            f"{where}: area=0, box area={box_area:g}",
        )
        return None
    if not crowd and area > 1.05 * box_area + 1:
        c.add(
            "area.larger_than_box",
            "warning",
            "'area' larger than the box's area (an object's mask lies inside its box); "
            "recompute it",
            f"{where}: area={area:g}, box area={box_area:g}",
        )
        return None
    return float(area)


def check_segmentation(ann: Mapping, where: At, img: dict | None, c: Collector) -> bool | None:
    """True: a valid mask; False: none ([] or absent); None: invalid (reported)."""
    if "segmentation" not in ann:
        return False
    segm = ann["segmentation"]
    if isinstance(segm, list):
        if not segm:
            return False
        if all_numbers(segm):
            c.add(
                "segmentation.flat_polygon",
                "error",
                "'segmentation' is a flat list of numbers; polygons are a list of lists: "
                "write [[x1, y1, x2, y2, ...]]",
                f"{where}: segmentation={short(segm)}",
            )
            return None
        too_short = []
        for k, poly in enumerate(segm):
            if not isinstance(poly, list) or not all_numbers(poly):
                c.add(
                    "segmentation.polygon_type",
                    "error",
                    "each polygon must be a list of numbers [x1, y1, x2, y2, ...]",
                    f"{where}: segmentation[{k}]={short(poly)}",
                )
                return None
            if len(poly) < 6 or len(poly) % 2:
                too_short.append(k)
        if len(too_short) == len(segm):
            c.add(
                "segmentation.polygon_short",
                "error",
                "no polygon of the annotation has 3 points (6 numbers, an even count): "
                "detectron2's loader drops the whole object; fix or remove it",
                f"{where}: segmentation[{too_short[0]}] has {len(segm[too_short[0]])} numbers",
            )
            return None
        if too_short:
            c.add(
                "segmentation.polygon_short_part",
                "warning",
                "polygons with fewer than 3 points (6 numbers) beside valid ones: detectron2 "
                "ignores them",
                f"{where}: segmentation[{too_short[0]}] has {len(segm[too_short[0]])} numbers",
            )
        return True  # finite coordinates: checked for all annotations at once
    if isinstance(segm, Mapping):
        size, counts = segm.get("size"), segm.get("counts")
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(is_int_id(v) for v in size)
            or not isinstance(counts, (str, list))
        ):
            c.add(
                "segmentation.rle_type",
                "error",
                "an RLE 'segmentation' is {'size': [height, width], 'counts': str or list}",
                f"{where}: segmentation={short(segm)}",
            )
            return None
        if img is not None and img["height"] and img["width"]:
            if list(size) != [int(img["height"]), int(img["width"])]:
                c.add(
                    "segmentation.rle_size",
                    "error",
                    "RLE 'size' differs from the image's [height, width] (the mask never "
                    "overlaps anything: IoU -1 in pycocotools)",
                    f"{where}: size={list(size)}, image is [{img['height']:g}, {img['width']:g}]",
                )
                return None
        return True
    c.add(
        "segmentation.type",
        "error",
        "'segmentation' must be a list of polygons or an RLE dict",
        f"{where}: segmentation={short(segm)}",
    )
    return None


def polygon_checks(items: list[tuple[At, float | None, list[list]]], c: Collector) -> None:
    """Vectorised over every polygon annotation ``(where, area to compare or None, polygons)``:
    non-finite coordinates (error) and areas far from the polygons' shoelace area (warning)."""
    if not items:
        return
    points, owner = [], []  # per polygon: number of points, index into items
    for k, (_, _, polys) in enumerate(items):
        for poly in polys:
            points.append(len(poly) // 2)
            owner.append(k)
    coords = np.fromiter(
        itertools.chain.from_iterable(p for _, _, polys in items for p in polys),
        dtype=np.float64,
        count=2 * sum(points),
    )
    xy = coords.reshape(-1, 2)
    lengths = np.asarray(points)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nxt = np.arange(len(xy)) + 1
    nxt[starts + lengths - 1] = starts  # each polygon closes on its first point
    with np.errstate(invalid="ignore", over="ignore"):
        cross = xy[:, 0] * xy[nxt, 1] - xy[:, 1] * xy[nxt, 0]
        per_polygon = 0.5 * np.abs(np.add.reduceat(cross, starts))
    owner_arr = np.asarray(owner)
    finite = np.isfinite(np.add.reduceat(coords[0::2] + coords[1::2], starts))
    bad = np.zeros(len(items), dtype=bool)
    np.logical_or.at(bad, owner_arr, ~finite)
    for k in np.flatnonzero(bad):
        c.add(
            "segmentation.not_finite",
            "error",
            "polygon coordinates must be finite numbers",
            f"{items[k][0]}: segmentation has NaN or infinite coordinates",
        )
    per_ann = np.bincount(
        owner_arr, weights=np.where(finite, per_polygon, 0.0), minlength=len(items)
    )
    for k, (where, area, _) in enumerate(items):
        if area is None or bad[k]:
            continue
        poly = float(per_ann[k])
        if abs(poly - area) > 0.25 * max(poly, area) + 10:
            c.add(
                "area.mismatch",
                "warning",
                "'area' far from the area of the annotation's polygons; recompute it",
                f"{where}: area={area:g}, polygon area={poly:.1f}",
            )
