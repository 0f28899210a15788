"""The join of predictions to the ground truth (:func:`join_predictions`): which key joins
categories and images (names or ids), and the mapping of those keys to ground-truth ids."""

from __future__ import annotations

import difflib
import math
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ovdet.data.check.fields import is_int_id
from ovdet.evaluation.predictions.geometry import check_geometry
from ovdet.evaluation.predictions.ground_truth import GTIndex
from ovdet.evaluation.predictions.load import (
    PredictionFormatError,
    Predictions,
    PredictionsLike,
    hashable,
    load_predictions,
)
from ovdet.evaluation.predictions.report import JoinedPredictions, JoinReport
from ovdet.evaluation.predictions.validate import short, validate
from ovdet.evaluation.predictions.verify import verify_id_join


def join_predictions(
    predictions: PredictionsLike,
    gt: Mapping,
    iou_types: Sequence[str] = ("bbox",),
    *,
    image_root: str | os.PathLike | None = None,
    trust_ids: bool = False,
    drop_unknown: bool = False,
    geometry_errors: bool = True,
) -> JoinedPredictions:
    """Validate detections and give them the ground truth's image and category ids.

    The rule is the package's docstring. Warnings (``UserWarning``) report what is legal but
    suspicious (scores outside [0, 1], zero-size boxes, boxes outside their image, a join by
    ids that could not be verified, predictions on few of the images).

    Args:
        predictions: a path, a list of results, a dataset dict or :class:`Predictions`.
        gt: the ground-truth dataset dict (validated: ``images``, ``categories`` with ``id``,
            ``name``; ``height``/``width`` used where present).
        iou_types: which geometry must be present (``bbox``, ``segm``).
        image_root: the folder the ground truth's ``file_name`` are relative to (to match
            prediction paths relative to it).
        trust_ids: skip the check of a join by ids.
        drop_unknown: drop predictions of images or categories not in the ground truth
            (counted in the report) instead of refusing them.
        geometry_errors: refuse boxes that look normalised, XYXY or far outside their
            image; False: only warn (ovdet's evaluators, whose boxes come from the model).

    Returns:
        :class:`JoinedPredictions` (results with ground-truth ids, segmentations as RLE
        sized like their image, and the :class:`JoinReport`).

    Raises:
        PredictionFormatError: malformed predictions, names or ids not in the ground truth,
            or a join by ids that the ground truth contradicts; the message names the file,
            the first entries and what to do.
    """
    preds = load_predictions(predictions)
    # entries are named source[i], or "source: annotations[i]" in a dataset of detections
    source = preds.source if preds.kind != "dataset" else f"{preds.source}: annotations"
    results = preds.results
    report = JoinReport()
    problems = validate(results, source, iou_types)
    problems.raise_errors()
    index = GTIndex(gt)
    root = os.fspath(image_root) if image_root is not None else None

    cat_of, report.categories_by = _category_keys(preds, results, source)
    img_of, report.images_by = _image_keys(preds, results, source)
    cat_map, unknown_cats = _map_categories(cat_of, results, preds, index, report, source)
    img_map, unknown_imgs = _map_images(img_of, results, preds, index, report, root, source)

    bad = " | ".join(text for text in (unknown_imgs, unknown_cats) if text)
    if bad and not drop_unknown:
        raise PredictionFormatError(bad)
    joined = []
    for r in results:
        gc = cat_map.get(hashable(cat_of(r)))
        gi = img_map.get(hashable(img_of(r)))
        if gc is None or gi is None:
            report.dropped += 1
            continue
        out = {k: v for k, v in r.items() if k not in ("category_name", "file_name")}
        out["image_id"], out["category_id"] = gi, gc
        joined.append(out)
    if report.dropped:
        warnings.warn(
            f"{source}: dropped {report.dropped} predictions of images or categories that are "
            f"not in the ground truth ({bad})",
            UserWarning,
            stacklevel=2,
        )
    report.predictions = len(joined)
    check_geometry(joined, index, iou_types, source, problems, report, refuse=geometry_errors)
    problems.raise_errors()
    problems.emit_warnings()
    if joined and not trust_ids and "id" in (report.images_by, report.categories_by):
        report.verification = verify_id_join(joined, gt, index, report, source)
    elif trust_ids and "id" in (report.images_by, report.categories_by):
        report.verification = "join by ids not verified (trusted)"
    covered = len({r["image_id"] for r in joined})
    if joined and covered < 0.5 * len(index.images):
        warnings.warn(
            f"{source}: the predictions cover {covered} of the {len(index.images)} ground-truth "
            "images; the objects of the others count as missed (evaluate on the images you "
            "ran the detector on, or check that all images were processed)",
            UserWarning,
            stacklevel=2,
        )
    return JoinedPredictions(joined, report)


def _category_keys(preds: Predictions, results: list, source: str):
    """(result -> category key, how) where the key is a name or an id."""
    named = [i for i, r in enumerate(results) if "category_name" in r]
    if named and len(named) != len(results):
        first = next(i for i, r in enumerate(results) if "category_name" not in r)
        raise PredictionFormatError(
            f"{source}[{first}] has no 'category_name' while {len(named)} other results have "
            "one: give every result a name, or none"
        )
    if named:
        return (lambda r: r["category_name"]), "name"
    if preds.category_names is not None:
        return (lambda r: r["category_id"]), "name"
    strings = [i for i, r in enumerate(results) if isinstance(r.get("category_id"), str)]
    if strings:
        if len(strings) != len(results):
            first = next(i for i, r in enumerate(results) if not isinstance(r["category_id"], str))
            raise PredictionFormatError(
                f"{source}: some category_id are strings ({source}[{strings[0]}]) and others "
                f"not ({source}[{first}]); use integer ids or category names throughout"
            )
        return (lambda r: r["category_id"]), "name"
    if preds.contiguous_categories:
        return (lambda r: _integral(r["category_id"])), "contiguous index"
    return (lambda r: _integral(r["category_id"])), "id"


def _image_keys(preds: Predictions, results: list, source: str):
    named = [i for i, r in enumerate(results) if "file_name" in r]
    if named and len(named) != len(results):
        first = next(i for i, r in enumerate(results) if "file_name" not in r)
        raise PredictionFormatError(
            f"{source}[{first}] has no 'file_name' while {len(named)} other results have one: "
            "give every result a file name, or none"
        )
    if named:
        return (lambda r: r["file_name"]), "file name"
    if preds.image_names is not None:
        return (lambda r: r["image_id"]), "file name"
    strings = [i for i, r in enumerate(results) if isinstance(r.get("image_id"), str)]
    if strings:
        if len(strings) != len(results):
            first = next(i for i, r in enumerate(results) if not isinstance(r["image_id"], str))
            raise PredictionFormatError(
                f"{source}: some image_id are strings ({source}[{strings[0]}]) and others not "
                f"({source}[{first}]); use the ground truth's integer ids or file names "
                "throughout"
            )
        return (lambda r: r["image_id"]), "file name"
    return (lambda r: _integral(r["image_id"])), "id"


def _integral(value: Any) -> Any:
    """1.0 -> 1 (pycocotools matches 1.0 to 1 anyway); anything else unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def _id_type_error(value: Any, field_name: str, where: str) -> str | None:
    if is_int_id(value):
        return None
    kind = "a boolean" if isinstance(value, bool) else f"a {type(value).__name__}"
    return f"{where} has {field_name}={short(value)}, {kind}: ids are integers"


def _map_categories(cat_of, results, preds, index: GTIndex, report: JoinReport, source: str):
    """({prediction key: GT category id}, error text for unknown ones or "")."""
    keys: dict[Any, int] = {}
    for i, r in enumerate(results):
        keys.setdefault(hashable(cat_of(r)), i)
    mapping: dict[Any, Any] = {}
    how = report.categories_by
    if how == "name":
        unknown, ambiguous = [], []
        for key, i in keys.items():
            name = key
            if preds.category_names is not None and "category_name" not in results[i]:
                if key not in preds.category_names:
                    raise PredictionFormatError(
                        f"{source}[{i}] has category_id={short(key)}, which is not "
                        "among the file's own 'categories'"
                    )
                name = preds.category_names[key]
            if not isinstance(name, str):
                raise PredictionFormatError(
                    f"{source}[{i}] has category name {short(name)}: names are text"
                )
            gid, why = index.category(name)
            if gid is None:
                (unknown if why == "unknown" else ambiguous).append((name, why))
                continue
            mapping[key] = gid
            own_id = results[i].get("category_id")
            if own_id != gid:
                report.category_ids_changed += 1
        report.category_names = len(mapping)
        if ambiguous:
            raise PredictionFormatError(
                f"{source}: category names match several ground-truth categories: "
                + "; ".join(f"{n!r} {w}" for n, w in ambiguous[:5])
                + ". Rename the duplicated ground-truth categories"
            )
        if unknown and all(n.strip().isdigit() for n, _ in unknown) and how == "name":
            if not any("category_name" in r for r in results[:1]) and not preds.category_names:
                raise PredictionFormatError(
                    f"{source}: category_id values are strings of digits (e.g. "
                    f"{unknown[0][0]!r}): ids are json integers: remove the quotes"
                )
        if not mapping and unknown:
            gt_names = list(index.cat_names.values())
            raise PredictionFormatError(
                f"{source}: none of the {len(unknown)} category names of the predictions is a "
                f"ground-truth category name (e.g. {[n for n, _ in unknown[:5]]}; the ground "
                f"truth has {gt_names[:8]}{'...' if len(gt_names) > 8 else ''}): wrong "
                "ground truth or vocabulary?"
            )
        if unknown:
            gt_names = [str(n) for n in index.cat_names.values()]
            hints = []
            for n, _ in unknown[:8]:
                close = difflib.get_close_matches(str(n), gt_names, n=2, cutoff=0.6)
                hints.append(f"{n!r}" + (f" (close: {close})" if close else ""))
            return mapping, (
                f"{source}: {len(unknown)} category names of the predictions are not "
                f"ground-truth categories: {', '.join(hints)}. Rename them, or pass "
                "drop_unknown (ovdet evaluate --drop-unknown) to ignore their predictions"
            )
        return mapping, ""
    # by id (or contiguous index)
    for i in keys.values():
        err = _id_type_error(cat_of(results[i]), "category_id", f"{source}[{i}]")
        if err:
            raise PredictionFormatError(err)
    if how == "contiguous index":
        n = len(index.cat_ids)
        bad = sorted(k for k in keys if not 0 <= k < n)
        if bad:
            raise PredictionFormatError(
                f"{source}: contiguous class indices {bad[:10]} are outside the "
                f"{n} ground-truth categories: these predictions were not made for this "
                "ground truth"
            )
        mapping = {k: index.cat_ids[k] for k in keys}
        return mapping, ""
    gt_ids = set(index.cat_ids)
    unknown_ids = sorted(k for k in keys if k not in gt_ids)
    mapping = {k: k for k in keys if k in gt_ids}
    if not unknown_ids:
        return mapping, ""
    hint = "map the detections to the ground truth's category ids, or write category_name"
    if 0 in unknown_ids and min(gt_ids, default=1) >= 1:
        hint = (
            "category ids start at 0: 0-based class indices (YOLO exports)? Map each class "
            "index to the ground truth's category id (e.g. sorted ids), or write category_name"
        )
    return mapping, (
        f"{source}: category ids {unknown_ids[:20]} are not among the ground-truth categories "
        f"(ids {_id_range(index.cat_ids)}); {hint}"
    )


def _id_range(ids: Sequence) -> str:
    ids = sorted(ids)
    if not ids:
        return "none"
    if len(ids) == ids[-1] - ids[0] + 1:
        return f"{ids[0]}..{ids[-1]}"
    return f"{ids[:6]}{'...' if len(ids) > 6 else ''}"


def _map_images(img_of, results, preds, index: GTIndex, report, root, source):
    keys: dict[Any, int] = {}
    for i, r in enumerate(results):
        keys.setdefault(hashable(img_of(r)), i)
    mapping: dict[Any, Any] = {}
    if report.images_by == "file name":
        ways: Counter = Counter()
        unknown, ambiguous = [], []
        for key, i in keys.items():
            name, own_id = key, results[i].get("image_id")
            from_dataset = preds.image_names is not None and "file_name" not in results[i]
            if from_dataset:
                if key not in preds.image_names:
                    raise PredictionFormatError(
                        f"{source}[{i}] has image_id={short(key)}, which is not "
                        "among the file's own 'images' (or has no file_name there)"
                    )
                name = preds.image_names[key]
            if not isinstance(name, str) or not name:
                raise PredictionFormatError(
                    f"{source}[{i}] has file name {short(name)}: file names are text"
                )
            stem = isinstance(results[i].get("image_id"), str) and not from_dataset
            gid, how = index.image(name, root, stem=stem)
            if gid is None:
                (unknown if how == "unknown" else ambiguous).append((name, how))
                continue
            mapping[key] = gid
            ways[how] += 1
            if own_id != gid:
                report.image_ids_changed += 1
        report.image_matches = dict(ways)
        if ambiguous:
            raise PredictionFormatError(
                f"{source}: image file names match several ground-truth images: "
                + "; ".join(f"{n!r}: {w}" for n, w in ambiguous[:3])
                + ". Give the image folder (ovdet evaluate --image-root) so that paths relative "
                "to it can be matched"
            )
        if unknown and all(n.strip().isdigit() for n, _ in unknown):
            if all(int(n) in index.images for n, _ in unknown):
                raise PredictionFormatError(
                    f"{source}: image_id values are strings of digits (e.g. {unknown[0][0]!r}) "
                    "that are ground-truth image ids: ids are json integers: remove the quotes"
                )
        if unknown:
            examples = [n for n, _ in unknown[:3]]
            gt_examples = list(index.by_path)[:3]
            text = (
                f"{source}: {len(unknown)} of {len(keys)} image file names of the predictions "
                f"match no ground-truth image (e.g. {examples}; ground-truth file names look "
                f"like {gt_examples})"
            )
            if not mapping:
                raise PredictionFormatError(text + ": wrong ground truth?")
            return mapping, text + (
                ". Remove them, or pass drop_unknown (ovdet evaluate --drop-unknown) to ignore "
                "their predictions"
            )
        return mapping, ""
    for i in keys.values():
        err = _id_type_error(img_of(results[i]), "image_id", f"{source}[{i}]")
        if err:
            raise PredictionFormatError(err)
    unknown_ids = sorted(k for k in keys if k not in index.images)
    mapping = {k: k for k in keys if k in index.images}
    if not unknown_ids:
        return mapping, ""
    hint = "map the detections to the ground truth's image ids, or write file_name"
    n = len(keys)
    if sorted(keys) == list(range(1, n + 1)) and unknown_ids:
        hint = (
            f"image ids 1..{n} look like `ovdet detect`'s numbering by input order: evaluate "
            "its detections.json, or a results.json whose entries carry file_name, so that "
            "images are matched by file name"
        )
    return mapping, (
        f"{source}: image ids {unknown_ids[:20]}{'...' if len(unknown_ids) > 20 else ''} are "
        f"not in the ground truth ({len(unknown_ids)} of {n} ids; the ground truth's are "
        f"{_id_range(list(index.images))}); {hint}"
    )
