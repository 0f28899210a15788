"""The detection run: model, vocabulary, images in batches, journal, final files."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError
from ovdet.utils.io import atomic_write, file_sha256, write_json
from ovdet.utils.journal import Journal

from .checks import (
    check_output_folder,
    compare_settings,
    resolve_detect_vocabulary,
)
from .layout import (
    FINAL_FILES,
    FORMAT,
    JOURNAL,
    MANIFEST,
    VERSION,
    VIS_DIR,
    clear_outputs,
    present_outputs,
    read_manifest,
    remove_stray_temporaries,
)


# ---------------------------------------------------------------------- the run
def image_list(inputs: Sequence[str], out: Path) -> list[dict[str, Any]]:
    """The images of ``--input`` (files, folders, globs) as ``{"id", "file_name", "path"}``,
    ids 1..N in input order, leaving out the pictures in ``out``'s ``vis/`` (also used by
    ``ovdet pseudo-label``)."""
    from ovdet.utils.image import list_images

    if not inputs:
        raise InputError("no --input given: pass images, folders or glob patterns")
    vis_abs = (out / VIS_DIR).resolve()
    images = []
    for path in list_images(list(inputs)):
        resolved = path.resolve()
        if vis_abs in resolved.parents:
            continue  # our own pictures (the output folder inside an input folder)
        images.append({"id": len(images) + 1, "file_name": str(path), "path": str(resolved)})
    if not images:
        raise FileNotFoundError(
            f"no images in --input {' '.join(inputs)} (besides the pictures in {vis_abs})"
        )
    return images


def file_identity(path: str | os.PathLike, option: str) -> dict[str, str]:
    """``{"file", "sha256"}`` of a run's input file; a missing file or a folder is refused
    naming ``option``."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{option} {p} not found")
    if p.is_dir():
        raise IsADirectoryError(f"{option} {p} is a folder; give the file itself")
    return {"file": str(p), "sha256": file_sha256(p)}


def _vis_path(out: Path, image: dict[str, Any]) -> Path:
    return out / VIS_DIR / f"{image['id']:06d}_{Path(image['file_name']).stem}.png"


def _finalise(out: Path, manifest: dict[str, Any], journal: Journal) -> dict[str, Any]:
    names = manifest["settings"]["vocabulary"]["names"]
    coco_images, results, errors = [], [], []
    with ExitStack() as stack:
        read = journal.reader(stack)  # each image's line, read back from the journal
        entries = [(image, read(image["id"])) for image in manifest["images"]]
    for image, entry in entries:
        if "error" in entry:
            errors.append(
                {"image_id": image["id"], "file": image["file_name"], "error": entry["error"]}
            )
            continue
        coco_images.append(
            {
                "id": image["id"],
                "file_name": image["file_name"],
                "height": entry["height"],
                "width": entry["width"],
            }
        )
        results.extend(entry["results"])
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    annotations = [
        dict(r, id=i + 1, area=r["bbox"][2] * r["bbox"][3], iscrowd=0)
        for i, r in enumerate(results)
    ]
    write_json(out / "results.json", results, newline=False, durable=True)
    write_json(
        out / "detections.json",
        {"images": coco_images, "categories": categories, "annotations": annotations},
        newline=False,
        durable=True,
    )
    write_json(out / "errors.json", errors, newline=False, durable=True)
    return {"images": len(coco_images), "failed": len(errors), "detections": len(results)}


def model_choice(
    model: str | os.PathLike | None,
    config: str | os.PathLike | None,
    weights: str | os.PathLike | None,
    overrides: Sequence[str],
):
    """The named model of the run (its ``ModelSpec``), or None for a --config run."""
    if model is None and (config is not None or weights is not None):
        if config is None:
            raise InputError(
                "--weights needs --config (the LazyConfig of that checkpoint); or use a named "
                "model: --model NAME (`ovdet models` lists them)"
            )
        if weights is None:
            raise InputError(
                "--weights is required: the detector's checkpoint (a model without weights "
                "detects at random)"
            )
        return None
    if config is not None or weights is not None:
        raise InputError(
            "--model and --config/--weights exclude each other: a named model brings its own "
            "config and weights; give one or the other"
        )
    if overrides:
        raise InputError(
            f"config overrides {list(overrides)} need --config: a named model runs as it was "
            "made (register a variant with a model card and its 'overrides')"
        )
    from ovdet.model_zoo import get_model

    return get_model(model)  # None: the best shipped model


def run_detect(
    *,
    config: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    inputs: Sequence[str],
    output: str | os.PathLike,
    vocab: str | None = None,
    vocab_file: str | None = None,
    embeddings: str | None = None,
    names_file: str | None = None,
    overrides: Sequence[str] = (),
    score_thresh: float = 0.3,
    batch_size: int = 1,
    device: str | None = None,
    vis: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    sam: str | None = None,
) -> dict[str, Any]:
    """Detect the vocabulary in every input image, writing and resuming as described in the
    module docstring.

    Args:
        config: LazyConfig file (trusted: executed); with ``weights``, instead of ``model``.
        weights: the model checkpoint (required with ``config``: a detector without weights
            is random).
        model: a named model (:func:`ovdet.model_zoo.get_model`: a name, a bundle folder or
            a model card); with neither ``config`` nor ``model``, the best shipped model.
        inputs: image files, folders (recursive) or glob patterns.
        output: output folder.
        vocab, vocab_file, embeddings, names_file: the vocabulary; exactly one of ``vocab``
            (names: ``"cat,dog"`` or a built-in name), ``vocab_file`` (names file) or
            ``embeddings`` (+ ``names_file``, default its ``.names.txt`` sidecar); none with
            a named model: its classes.
        overrides: config ``key=value`` overrides.
        score_thresh: keep detections scoring at least this, in [0, 1].
        batch_size: images per forward pass (>= 1).
        device: "auto"/None, "cpu", "cuda", "cuda:N".
        vis: draw each image's detections to ``vis/``.
        overwrite: delete the outputs of another run in ``output`` and start over.
        progress: show a progress bar on stderr.
        sam: a SAM spec (``TYPE:CHECKPOINT`` or a checkpoint path,
            :func:`ovdet.modeling.sam.sam_from_spec`): the masks come from SAM prompted with
            the detected boxes. Loaded and checked before any image.

    Returns:
        ``{"images": read, "failed": unreadable, "detections": N, "resumed": images done by
        an earlier run, "output": folder}`` (and ``"model"``: its name, for a named model).

    Raises:
        InputError (and FileNotFoundError, ValueError, TypeError, IsADirectoryError): a bad
            argument or file, named, before any image is read; a folder holding another run.
    """
    from ovdet.predictor import OVPredictor, check_score_thresh
    from ovdet.utils.memory import fix_malloc_mmap_threshold

    fix_malloc_mmap_threshold()  # flat memory over many images (ovdet.utils.memory)
    # 1. cheap checks: numbers, vocabulary, files, inputs, output folder, other runs
    score_thresh = check_score_thresh(score_thresh, "--score-thresh")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    spec = model_choice(model, config, weights, overrides)
    if spec is not None and (vocab, vocab_file, embeddings, names_file) == (None,) * 4:
        if not spec.classes:
            raise InputError(
                f"model {spec.name} ({spec.path}) names no default vocabulary: give --vocab "
                "NAMES, --vocab-file FILE or --embeddings FILE"
            )
        names, emb = list(spec.classes), None
        vocab_identity = {"names": names, "embeddings": None}
    else:
        names, emb, vocab_identity = resolve_detect_vocabulary(
            vocab=vocab, vocab_file=vocab_file, embeddings=embeddings, names_file=names_file
        )
    if spec is None:
        config_identity = file_identity(config, "--config")
        weights_identity: dict[str, str] | None = file_identity(weights, "--weights")
    else:  # the model's files are checked (checksums, card fields) and recorded as one
        config_identity, weights_identity = {"file": None, "sha256": None}, None
    out = Path(output).expanduser()
    images = image_list(inputs, out)
    check_output_folder(out, vis=vis)
    sam_model, sam_identity = (None, None)
    if sam is not None:  # checked (type, file, fit) and loaded before any image
        from ovdet.modeling.sam import BoxPromptedSAM, sam_from_spec

        sam_model, sam_identity = sam_from_spec(sam)
        sam_model = BoxPromptedSAM(sam_model)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "settings": {
            "config": dict(config_identity, overrides=list(overrides)),
            "weights": weights_identity,
            "model": None if spec is None else spec.identity(),
            "vocabulary": vocab_identity,
            "score_thresh": score_thresh,
            "vis": bool(vis),
            "sam": sam_identity,
        },
        "images": images,
        "execution": {"batch_size": batch_size, "device": device or "auto"},
    }
    old = None if overwrite else read_manifest(out)
    fresh = True
    if old is not None:
        diffs = compare_settings(old, manifest)
        journal_path = out / JOURNAL
        has_work = (journal_path.is_file() and journal_path.stat().st_size > 0) or any(
            (out / name).exists() for name in FINAL_FILES
        )
        if diffs and has_work:
            raise InputError(
                f"output folder {out} holds another detect run ({MANIFEST}) that differs from "
                f"this one in {'; '.join(diffs)}. Pass --overwrite to delete its outputs and "
                "start over, or choose another --output folder (rerun that run's command to "
                "finish it)"
            )
        if not diffs:
            fresh = False
            manifest["images"] = old["images"]  # the recorded file names, as first found
    elif not overwrite:
        present = present_outputs(out)
        if present:
            raise InputError(
                f"output folder {out} holds detect outputs ({', '.join(present)}) without a "
                f"{MANIFEST} (an older ovdet or another tool wrote them), so they cannot be "
                "resumed or told apart from this run's: pass --overwrite to delete them, or "
                "choose another --output folder"
            )

    # 2. the model, its weights and the vocabulary
    if spec is None:
        predictor = OVPredictor.from_config(
            str(config),
            str(weights),
            overrides=list(overrides),
            device=device or "auto",
            score_thresh=score_thresh,
            sam=sam_model,
        )
    else:
        predictor = OVPredictor.from_pretrained(
            spec, device=device or "auto", score_thresh=score_thresh, sam=sam_model
        )
    try:
        if emb is not None:
            predictor.set_vocabulary(emb, names=names)
        else:
            predictor.set_vocabulary(names)
    except InputError as exc:
        raise InputError(f"{'--vocab' if vocab is not None else '--vocab-file'}: {exc}") from exc
    except ValueError as exc:
        source = f"--embeddings {embeddings}" if emb is not None else "the vocabulary"
        raise InputError(f"{source}: {exc}") from exc

    # 3. the folder: start over or resume
    if fresh:
        clear_outputs(out)
        write_json(out / MANIFEST, manifest, indent=1, durable=True)
    else:
        remove_stray_temporaries(out)
    journal = Journal(out / JOURNAL, {img["id"]: img["file_name"] for img in manifest["images"]})
    done = journal.done()
    todo = [img for img in manifest["images"] if img["id"] not in done]
    if done and progress:
        print(
            f"ovdet detect: resuming in {out}: {len(done)} of {len(manifest['images'])} images "
            "already done",
            file=sys.stderr,
        )
    novel = frozenset(spec.novel if spec is not None else ())
    _detect_images(predictor, todo, names, out, journal, batch_size, score_thresh, vis, progress,
                   total=len(manifest["images"]), initial=len(done), novel=novel)  # fmt: skip
    summary = _finalise(out, manifest, journal)
    summary.update(resumed=len(done), output=str(out))
    if spec is not None:
        summary["model"] = spec.name
    return summary


def _detect_images(
    predictor,
    todo: list[dict[str, Any]],
    names: list[str],
    out: Path,
    journal: Journal,
    batch_size: int,
    score_thresh: float,
    vis: bool,
    progress: bool,
    *,
    total: int,
    initial: int,
    novel: frozenset[str] = frozenset(),
) -> None:
    """Read, detect, draw and journal ``todo`` in batches of readable images (the classes
    in ``novel`` drawn dashed with a ``*``)."""
    from tqdm import tqdm

    from ovdet.evaluation.results import detections_to_coco_results
    from ovdet.utils.image import ImageReadError, load_image
    from ovdet.utils.visualize import draw_detections

    category_ids = list(range(1, len(names) + 1))  # vocabulary row i -> category id i + 1
    pending: list[dict[str, Any]] = []  # journal entries of this batch (errors included)
    batch: list[tuple[dict[str, Any], Any]] = []

    def flush() -> None:
        if batch:
            outs = predictor.predict_batch([arr for _, arr in batch], score_thresh=score_thresh)
            for (image, arr), det in zip(batch, outs):
                results = detections_to_coco_results(
                    image["id"],
                    det["boxes"],
                    det["scores"],
                    det["labels"],
                    category_ids,
                    det.get("masks"),
                    category_names=names,
                    file_name=image["file_name"],
                )
                if vis:
                    picture = draw_detections(
                        arr,
                        det["boxes"],
                        det["labels"],
                        det["class_names"],
                        det["scores"],
                        det.get("masks"),
                        novel=[n in novel for n in det["class_names"]] if novel else None,
                    )
                    atomic_write(
                        _vis_path(out, image), lambda tmp, pic=picture: pic.save(tmp, format="PNG")
                    )
                height, width = arr.shape[:2]
                pending.append(
                    {
                        "image_id": image["id"],
                        "file_name": image["file_name"],
                        "height": int(height),
                        "width": int(width),
                        "results": results,
                    }
                )
        pending.sort(key=lambda e: e["image_id"])
        journal.append(pending)  # the commit point of these images
        pending.clear()
        batch.clear()

    bar = tqdm(total=total, initial=initial, desc="detect", unit="img", disable=not progress)
    with bar:
        for image in todo:
            try:
                arr = load_image(image["path"])
            except ImageReadError as exc:
                print(f"ovdet detect: skipping {image['file_name']}: {exc}", file=sys.stderr)
                pending.append(
                    {"image_id": image["id"], "file_name": image["file_name"], "error": str(exc)}
                )
                bar.update(1)
                continue
            batch.append((image, arr))
            if len(batch) >= batch_size:
                n = len(batch)
                flush()
                bar.update(n)
        n = len(batch)
        flush()
        bar.update(n)
