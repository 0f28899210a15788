"""The pseudo-label run: checks, manifest, images in batches, journal, final files."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ovdet.utils.errors import InputError
from ovdet.utils.io import file_sha256, write_json

from .filters import FilterSettings, check_filter_settings, filter_detections
from .layout import (
    FORMAT,
    JOURNAL,
    MANIFEST,
    OWN_FILES,
    VERSION,
    clear_run,
    has_work,
    read_run_manifest,
    setting_diffs,
    shard_folder,
)
from .shards import distributed_shard, merge_shards, resolve_shard
from .teachers import PseudoLabelTeacher, build_detector_teacher
from .writer import LabelJournal, write_outputs


def coco_json_images(coco_json: str | os.PathLike, image_root: str | os.PathLike | None):
    """The images of a COCO json (its ids and file names, in file order), found under
    ``image_root``.

    Raises:
        FileNotFoundError, InputError: a missing file or folder, a json without a proper
            ``images`` list (the entry is named), a repeated id.
    """
    path = Path(coco_json).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--coco-json {path} not found; give a COCO json file")
    if image_root is None:
        raise InputError("--coco-json needs --image-root: the folder its file_name are under")
    root = Path(image_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--image-root {root} is not a folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--coco-json {path} is not a JSON file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError(f"--coco-json {path} has no 'images' list; is it a COCO dataset?")
    images, seen = [], set()
    for i, img in enumerate(data["images"]):
        ok = isinstance(img, dict) and isinstance(img.get("file_name"), str)
        if not ok or isinstance(img.get("id"), bool) or not isinstance(img.get("id"), int):
            raise InputError(
                f"--coco-json {path}: images[{i}] needs an integer 'id' and a 'file_name'"
            )
        if img["id"] in seen:
            raise InputError(f"--coco-json {path}: images[{i}] repeats image id {img['id']}")
        seen.add(img["id"])
        images.append(
            {
                "id": img["id"],
                "file_name": img["file_name"],
                "path": str((root / img["file_name"]).resolve()),
            }
        )
    if not images:
        raise InputError(f"--coco-json {path} lists no images")
    return images


def _teacher_identity(teacher: PseudoLabelTeacher) -> dict[str, Any]:
    """The manifest fields of a teacher given as an object (the API's ``teacher=``)."""
    ident = teacher.identity()
    if "vocabulary" in ident:  # a DetectorTeacher: recorded as ovdet detect records models
        return ident
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()
    return {
        "config": {"file": None, "sha256": None, "overrides": []},
        "weights": None,
        "model": {
            "name": type(teacher).__name__,
            "kind": "teacher",
            "path": None,
            "sha256": digest,
        },
        "vocabulary": {"names": list(teacher.classes), "embeddings": None},
        "novel": teacher.novel,
    }


def run_pseudo_label(
    *,
    output: str | os.PathLike,
    inputs: Sequence[str] | None = None,
    coco_json: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    vocab: str | None = None,
    vocab_file: str | None = None,
    embeddings: str | None = None,
    names_file: str | None = None,
    captions: str | os.PathLike | None = None,
    score_thresh: float = 0.3,
    class_thresh: str | dict[str, float] | None = None,
    nms: float | None = None,
    agnostic_nms: float | None = None,
    max_per_image: int | None = 100,
    batch_size: int = 1,
    device: str | None = None,
    num_shards: int | None = None,
    shard_index: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    teacher: PseudoLabelTeacher | None = None,
    sam: str | None = None,
    clip: str | os.PathLike | None = None,
    top_proposals: int = 100,
    clip_temperature: float | None = None,
    objectness_weight: float = 0.5,
) -> dict[str, Any]:
    """Pseudo-label every input image; see :mod:`ovdet.pseudo_label` for the files, resume
    and sharding.

    Args:
        output: output folder.
        inputs: image files, folders or globs (as ``ovdet detect``); or ``coco_json`` +
            ``image_root``: the images of a COCO json, with its ids.
        model, config, weights, overrides, vocab, vocab_file, embeddings, names_file,
            device: the teacher, as ``ovdet detect`` takes them; or ``teacher``: any
            :class:`~ovdet.pseudo_label.teachers.PseudoLabelTeacher`.
        clip, top_proposals, clip_temperature, objectness_weight: the "CLIP on proposals"
            teacher (:mod:`~ovdet.pseudo_label.clip_proposals`) instead of the detector's
            heads: ``config`` + ``weights``' RPN proposes, the small CLIP checkpoint ``clip``
            classifies the crops against ``embeddings`` (of that CLIP).
        captions: per-image vocabularies (:mod:`~ovdet.pseudo_label.captions`).
        sam: a SAM spec (``TYPE:CHECKPOINT`` or a checkpoint path,
            :func:`ovdet.modeling.sam.sam_from_spec`): the kept boxes get SAM's masks (RLE
            ``segmentation``, ``area`` the mask's pixels, ``mask_score`` SAM's predicted IoU),
            replacing the teacher's own masks; checked and loaded before any image.
        score_thresh, class_thresh, nms, agnostic_nms, max_per_image: the filters
            (:mod:`~ovdet.pseudo_label.filters`).
        batch_size: images per teacher call.
        num_shards, shard_index: label every ``num_shards``-th image into
            ``output/shards/<shard_index>`` (taken from torch.distributed when initialised).
        overwrite: start over in a folder holding another run.
        progress: a progress bar on stderr.

    Returns:
        ``{"images", "images_with_boxes", "boxes", "failed", "labelled", "resumed",
        "images_per_s", "output"}`` (and ``"shard"`` for one shard of several).
    """
    from ovdet.utils.memory import fix_malloc_mmap_threshold

    from .captions import CaptionIndex

    fix_malloc_mmap_threshold()  # flat memory over many images (ovdet.utils.memory)
    # 1. cheap checks: options, vocabulary, files, inputs, output folder, other runs
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    dist = distributed_shard()
    index, count = resolve_shard(num_shards, shard_index, dist)
    options = {"model": model, "config": config, "weights": weights, "overrides": overrides,
               "vocab": vocab, "vocab_file": vocab_file, "embeddings": embeddings,
               "names_file": names_file}  # fmt: skip
    clip_options = None
    if clip is not None:
        from .clip_proposals import build_clip_proposal_teacher

        if model is not None or vocab is not None or vocab_file is not None:
            raise InputError(
                "--clip classifies the proposals of --config/--weights against --embeddings; "
                "--model, --vocab and --vocab-file do not apply"
            )
        clip_options = dict(
            config=config,
            weights=weights,
            clip=clip,
            embeddings=embeddings,
            overrides=overrides,
            top_m=top_proposals,
            temperature=clip_temperature,
            objectness_weight=objectness_weight,
        )
        _, names, identity = build_clip_proposal_teacher(**clip_options, load=False)
    elif teacher is None:
        _, names, identity = build_detector_teacher(**options, load=False)
    else:
        names, identity = list(teacher.classes), _teacher_identity(teacher)
    filters = check_filter_settings(
        score_thresh=score_thresh,
        class_thresh=class_thresh,
        nms=nms,
        agnostic_nms=agnostic_nms,
        max_per_image=max_per_image,
        names=names,
    )
    index_of_captions = None if captions is None else CaptionIndex(captions, names)
    sam_model, sam_identity = None, None
    if sam is not None:  # type, file and fit checked now; the model is wrapped in step 2
        from ovdet.modeling.sam import sam_from_spec

        sam_model, sam_identity = sam_from_spec(sam)
    out = Path(output).expanduser()
    images = _images(inputs, coco_json, image_root, out)
    from ovdet.detect.checks import check_output_folder

    check_output_folder(out, vis=False)
    folder = out if count == 1 else shard_folder(out, index)
    check_output_folder(folder, vis=False)
    settings = dict(identity)
    settings.update(
        score_thresh=filters.score_thresh,
        filters=filters.to_json(names),
        captions=None
        if captions is None
        else {"file": str(captions), "sha256": file_sha256(captions)},
        input_kind="coco-json" if coco_json is not None else "inputs",
        sam=sam_identity,
    )
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "settings": settings,
        "images": images,
        "shard": {"index": index, "count": count},
        "execution": {"batch_size": batch_size, "device": device or "auto"},
    }
    fresh = _check_folder(folder, manifest, overwrite)
    if not fresh:
        manifest["images"] = read_run_manifest(folder)["images"]

    # 2. the teacher (the model is built only now)
    if teacher is None:
        if dist is not None and (device or "auto") == "auto":
            device = _local_cuda_device()
        if clip_options is not None:
            teacher, _, _ = build_clip_proposal_teacher(**clip_options, device=device)
        else:
            teacher, _, _ = build_detector_teacher(
                **options, device=device, min_score=filters.min_score()
            )
    if sam_model is not None:
        from ovdet.modeling.sam import BoxPromptedSAM
        from ovdet.utils.device import resolve_device

        sam_model = BoxPromptedSAM(sam_model, device=resolve_device(device or "auto"))

    # 3. the folder: start over or resume; label; finish
    if fresh:
        clear_run(folder)
        write_json(folder / MANIFEST, manifest, indent=1, durable=True)
    mine = [img for k, img in enumerate(manifest["images"]) if k % count == index]
    journal = LabelJournal(folder / JOURNAL, {img["id"]: img["file_name"] for img in mine})
    done = journal.done()
    todo = [img for img in mine if img["id"] not in done]
    if done and progress:
        print(
            f"ovdet pseudo-label: resuming in {folder}: {len(done)} of {len(mine)} images "
            "already done",
            file=sys.stderr,
        )
    start = time.perf_counter()
    _label_images(
        teacher,
        todo,
        journal,
        filters,
        index_of_captions,
        batch_size,
        progress,
        range(1, len(names) + 1),
        total=len(mine),
        initial=len(done),
        sam=sam_model,
    )
    rate = len(todo) / max(time.perf_counter() - start, 1e-9)
    if progress and todo:
        print(
            f"ovdet pseudo-label: {len(todo)} images in {time.perf_counter() - start:.1f} s "
            f"({rate:.2f} images/s)",
            file=sys.stderr,
        )
    extra: dict[str, Any] = {
        "labelled": len(todo),
        "resumed": len(done),
        "images_per_s": round(rate, 3),
        "output": str(out),
    }
    if count > 1:
        extra["shard"] = f"{index}/{count}"
        if dist is None:
            return dict(images=len(mine), failed=len(journal.failed), **extra)
        import torch.distributed as tdist

        tdist.barrier()
        if index != 0:
            return dict(images=len(mine), failed=len(journal.failed), **extra)
        summary = merge_shards(out)
    else:
        with ExitStack() as stack:
            summary = write_outputs(
                out,
                [img["id"] for img in manifest["images"]],
                journal.reader(stack),
                names,
                settings.get("novel"),
            )
    return dict(
        images=summary["images"],
        images_with_boxes=summary["images_with_boxes"],
        boxes=summary["boxes"],
        failed=summary["unreadable_images"],
        **extra,
    )


def _images(inputs, coco_json, image_root, out: Path) -> list[dict[str, Any]]:
    if coco_json is not None:
        if inputs:
            raise InputError("give --input or --coco-json (with --image-root), not both")
        return coco_json_images(coco_json, image_root)
    if image_root is not None:
        raise InputError("--image-root goes with --coco-json; for a folder use --input FOLDER")
    if not inputs:
        raise InputError(
            "no images: pass --input FILES/FOLDERS/GLOBS, or --coco-json FILE --image-root DIR"
        )
    from ovdet.detect.run import image_list

    return image_list(list(inputs), out)


def _check_folder(folder: Path, manifest: dict[str, Any], overwrite: bool) -> bool:
    """Whether the run starts fresh in ``folder`` (False: resume); refuses another run."""
    if overwrite:
        return True
    old = read_run_manifest(folder)
    if old is None:
        present = [n for n in OWN_FILES if (folder / n).exists()]
        if present:
            raise InputError(
                f"output folder {folder} holds pseudo-label outputs ({', '.join(present)}) "
                f"without a {MANIFEST}, so they cannot be resumed: pass --overwrite to delete "
                "them, or choose another --output folder"
            )
        return True
    diffs = setting_diffs(old, manifest)
    if not diffs:
        return False
    if has_work(folder):
        raise InputError(
            f"output folder {folder} holds another pseudo-label run ({MANIFEST}) that differs "
            f"from this one in {'; '.join(diffs)}. Pass --overwrite to delete its outputs and "
            "start over, or choose another --output folder"
        )
    return True


def _local_cuda_device() -> str:
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"


def _label_images(
    teacher: PseudoLabelTeacher,
    todo: list[dict[str, Any]],
    journal: LabelJournal,
    filters: FilterSettings,
    captions: Any,
    batch_size: int,
    progress: bool,
    category_ids: Sequence[int],
    *,
    total: int,
    initial: int,
    sam: Any = None,
) -> None:
    """Read, label, filter and journal ``todo`` in batches (an unreadable image is journalled
    as an error; an image whose captions name no class is not shown to the teacher; with
    ``sam``, the kept boxes get SAM's masks)."""
    from tqdm import tqdm

    from ovdet.utils.image import ImageReadError

    batch: list[tuple[dict[str, Any], np.ndarray, list[int] | None]] = []
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        try:
            dets = teacher.label([arr for _, arr, _ in batch]) if batch else []
        except ImageReadError:  # one image the model cannot take (e.g. too thin): one by one
            dets = [_label_one(teacher, arr) for _, arr, _ in batch]
        for (image, arr, allowed), det in zip(batch, dets):
            pending.append(_entry(image, arr, det, filters, allowed, category_ids, sam))
        journal.append(sorted(pending, key=lambda e: e["image_id"]))  # the commit point
        bar.update(len(pending))
        del pending[:], batch[:]

    bar = tqdm(total=total, initial=initial, desc="pseudo-label", unit="img", disable=not progress)
    with bar:
        for image, arr in _read_images(todo):
            allowed = None
            if isinstance(arr, str):  # unreadable: journalled as an error, retried next run
                pending.append(dict(image_id=image["id"], file_name=image["file_name"], error=arr))
            elif captions is not None and not (allowed := captions.classes_of(image["file_name"])):
                # the captions name no class: no boxes, no teacher call
                pending.append(_entry(image, arr, None, filters, allowed, category_ids))
            else:
                batch.append((image, arr, allowed))
            if len(batch) + len(pending) >= batch_size:  # at most a batch of entries held
                flush()
        flush()


def _read_images(todo: list[dict[str, Any]]):
    """(image, RGB array) for each image, or (image, error message) when it cannot be read."""
    from ovdet.utils.image import ImageReadError, load_image

    for image in todo:
        try:
            yield image, load_image(image["path"])
        except ImageReadError as exc:
            print(f"ovdet pseudo-label: skipping {image['file_name']}: {exc}", file=sys.stderr)
            yield image, str(exc)


def _label_one(teacher: PseudoLabelTeacher, arr: np.ndarray) -> dict[str, Any] | str:
    from ovdet.utils.image import ImageReadError

    try:
        return teacher.label([arr])[0]
    except ImageReadError as exc:
        return str(exc)


def _entry(
    image, arr, det, filters: FilterSettings, allowed, category_ids, sam=None
) -> dict[str, Any]:
    """The journal line of one image: its size and its filtered annotations (or error);
    with ``sam`` the kept boxes' masks are SAM's."""
    from ovdet.evaluation.results import detections_to_coco_results

    base = {"image_id": image["id"], "file_name": image["file_name"]}
    if isinstance(det, str):
        return dict(base, error=det)
    height, width = arr.shape[:2]
    annotations: list[dict[str, Any]] = []
    if det is not None:
        keep = filter_detections(
            det["boxes"], det["scores"], det["labels"], filters, allowed=allowed
        )
        masks = det.get("masks")
        masks = None if masks is None else np.asarray(masks)[keep]
        mask_scores = None
        if sam is not None:
            from ovdet.modeling.sam import masks_for_detections

            prompted = masks_for_detections(sam, arr, {"boxes": np.asarray(det["boxes"])[keep]})
            masks, mask_scores = prompted["masks"], prompted["mask_scores"]
        labels = np.asarray(det["labels"])[keep]
        results = detections_to_coco_results(
            image["id"],
            np.asarray(det["boxes"])[keep],
            np.asarray(det["scores"])[keep],
            labels,
            category_ids,
            masks,
        )
        for k, r in enumerate(results):
            x, y, w, h = r["bbox"]
            ann = {
                "category_id": r["category_id"],
                "bbox": [x, y, w, h],
                "area": float(w * h) if masks is None else float(masks[k].sum()),
                "score": r["score"],
                "iscrowd": 0,
            }
            if "segmentation" in r:
                ann["segmentation"] = r["segmentation"]
            if mask_scores is not None:
                ann["mask_score"] = round(float(mask_scores[k]), 6)
            annotations.append(ann)
    return dict(base, height=int(height), width=int(width), annotations=annotations)
