"""Geometry of joined results against their image: boxes normalised, XYXY or far outside
(errors or warnings); masks to compressed RLE of the image's size."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pycocotools.mask as mask_util

from ovdet.evaluation.predictions.ground_truth import GTIndex
from ovdet.evaluation.predictions.validate import MAX_EXAMPLES, Problems, short

# a box beyond its image by more than this fraction of the image side is "far outside"
FAR_OUTSIDE_FRACTION = 0.1
# more than this fraction of far-outside boxes is an error, not a warning
FAR_OUTSIDE_MAX_SHARE = 0.01


def check_geometry(
    joined, index: GTIndex, iou_types, source, p: Problems, report, *, refuse: bool = True
) -> None:
    """Boxes against their image's size (normalised, XYXY, far outside: errors, or warnings
    when not ``refuse``); masks to RLE of the image's size."""
    flag = p.error if refuse else p.warn
    boxes, sizes, where = [], [], []
    for i, r in enumerate(joined):
        size = index.size(r["image_id"])
        if "bbox" in r and size is not None:
            boxes.append([float(v) for v in r["bbox"]])
            sizes.append(size)
            where.append(i)
        if "segm" in iou_types:
            _to_rle(r, size, f"{source}[{i}]", p)
    if not boxes:
        return
    b = np.asarray(boxes)
    hw = np.asarray(sizes)
    H, W = hw[:, 0], hw[:, 1]
    x, y, w, h = b.T
    if len(b) >= 3 and np.all(b <= 1.0 + 1e-6) and np.median(np.minimum(W, H)) > 32:
        flag(
            "every box lies within [0, 1]: boxes look normalised (YOLO style); COCO results "
            "are in pixels: multiply x, w by the image width and y, h by its height",
            f"{source}: {len(b)} boxes, e.g. bbox={short(boxes[0])}",
        )
        return
    over = (x + w > W * (1 + FAR_OUTSIDE_FRACTION) + 1) | (
        y + h > H * (1 + FAR_OUTSIDE_FRACTION) + 1
    )
    as_xyxy = (w > x) & (h > y) & (w <= W + 1) & (h <= H + 1)
    if over.any() and as_xyxy.all():
        k = int(np.argmax(over))
        flag(
            f"boxes look like [x1, y1, x2, y2]: {int(over.sum())} of {len(b)} end far outside "
            "their image as [x, y, w, h] while all fit as corners; convert them to "
            "[x1, y1, x2 - x1, y2 - y1]",
            f"{source}[{where[k]}] bbox={short(boxes[k])} on a {W[k]:g}x{H[k]:g} image",
        )
        return
    far = (
        (x < -FAR_OUTSIDE_FRACTION * W - 1)
        | (y < -FAR_OUTSIDE_FRACTION * H - 1)
        | over
        | (x >= W)
        | (y >= H)
    )
    if far.any():
        message = (
            "boxes far outside their image (by more than 10% of its size): boxes in another "
            "image's coordinates (resized input, wrong image join?)"
        )
        if report.images_by == "id":
            message += (
                "; images were joined by id: if the ids are not the ground truth's (`ovdet "
                "detect` numbers images 1..N in input order), write file_name in the results"
            )
        examples = [
            f"{source}[{where[k]}] bbox={short(boxes[k])} on image {joined[where[k]]['image_id']} "
            f"({W[k]:g}x{H[k]:g})"
            for k in np.flatnonzero(far)[:MAX_EXAMPLES]
        ]
        add = flag if far.mean() > FAR_OUTSIDE_MAX_SHARE else p.warn
        for ex in examples:
            add(message + f" ({int(far.sum())} of {len(b)})", ex)


def _to_rle(r: dict, size: tuple[float, float] | None, at: str, p: Problems) -> None:
    """Polygons and uncompressed RLE -> compressed RLE; refuse an RLE of another size."""
    segm = r.get("segmentation")
    if segm is None:
        return
    if isinstance(segm, Mapping):
        rle_size = list(segm.get("size", []))
        if size is not None and rle_size != [int(size[0]), int(size[1])]:
            p.error(
                "the mask's RLE 'size' differs from its image's [height, width] "
                "(pycocotools would give IoU -1: never a match)",
                f"{at} has size={rle_size}, image is [{size[0]:g}, {size[1]:g}]",
            )
            return
        if isinstance(segm.get("counts"), list):  # uncompressed RLE
            h, w = rle_size
            r["segmentation"] = _compressed(mask_util.frPyObjects(dict(segm), h, w))
        return
    if size is None:
        p.error(
            "polygon masks need the image's height and width in the ground truth",
            f"{at} (image {r['image_id']})",
        )
        return
    h, w = int(size[0]), int(size[1])
    r["segmentation"] = _compressed(mask_util.merge(mask_util.frPyObjects(segm, h, w)))


def _compressed(rle: dict) -> dict:
    rle = dict(rle)
    if isinstance(rle["counts"], bytes):
        rle["counts"] = rle["counts"].decode("ascii")
    return rle
