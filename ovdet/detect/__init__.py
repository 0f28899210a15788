"""Text-prompted detection on many images, resumable: the library of ``ovdet detect``.

:func:`run_detect` checks everything it can before the first image -- the score threshold
and batch size, the vocabulary (names, names file, embeddings + their names file), the
inputs, the named model (``--model``: name or path, bundle checksums, card fields and files)
or the config and weights files, the output folder (created, and written to with a probe
file) and whether the folder holds another run -- then builds the model, loads its weights
(strictly, through :func:`ovdet.engine.build.model_from_config`) and sets the vocabulary; only
then does it read images.

Output folder (``--output``)::

    run.json          the run's manifest (written before the first image)
    results.jsonl     the journal: one json line per image, appended and fsynced per batch
    vis/<id:06d>_<stem>.png   the detections drawn on each image (unless vis is off)
    results.json      } written atomically when every image is done, from the journal
    detections.json   }
    errors.json       }

**Resume.** A run killed at any point and started again with the same settings into the same
folder skips the images its journal records as done and ends with exactly the files of an
uninterrupted run (same image ids, same order, same bytes; the final files are always built
from the journal). An image that could not be read is recorded in the journal as an error and
retried by the next run. A run with other settings -- config file content or overrides,
weights file content, named model (its files' checksums), vocabulary (names, embeddings file
content), inputs, score threshold, vis on/off, SAM (``--sam``: type and checkpoint
content) -- into a folder that holds another run's outputs is refused, naming what
differs; ``overwrite=True`` (``--overwrite``) deletes that run's outputs (only the files
listed above) and starts over. The batch size and the device may change on a resume
(detections may then differ in the last digits). What the config file imports is not
compared, nor the images' content.

**Image ids** are the 1-based positions of the images in the input list (inputs in the
order given; a folder's images sorted by path, a glob's matches sorted; the pictures in the
output folder's ``vis/`` are left out), recorded in ``run.json``. **Category ids** are 1..C in
vocabulary order.

**Fields written** (exactly these):

* ``results.json``: a list, by image id then descending score, of
  ``{"image_id": int, "category_id": int, "bbox": [x, y, w, h] (XYWH, original pixels),
  "score": float, ["segmentation": {"size": [h, w], "counts": str} (RLE, models with masks
  or ``--sam``: SAM's masks of the boxes),]
  "category_name": str, "file_name": str}``;
* ``detections.json``: a COCO dataset, ``{"images": [{"id", "file_name", "height",
  "width"}], "categories": [{"id", "name"}], "annotations": [the results above, each with
  "id" (1..N in the order of results.json), "area" (w * h of the box), "iscrowd": 0]}``;
  ``images`` lists the images that were read, by id;
* ``errors.json``: a list, by image id, of ``{"image_id": int, "file": str, "error": str}``
  for the images that could not be read;
* ``file_name`` everywhere is the image path as found from the inputs (an input folder or
  glob as given, joined with the path inside it);
* ``run.json``: ``{"format": "ovdet-detect-run", "version": 1, "settings": {"config": {"file",
  "sha256", "overrides"}, "weights": {"file", "sha256"}, "model": null | {"name", "kind",
  "path", "sha256"}, "vocabulary": {"names", "embeddings": null | {"file", "sha256"}},
  "score_thresh", "vis", "sam": null | {"spec", "type", "file", "sha256"}}, "images":
  [{"id", "file_name", "path" (absolute)}], "execution": {"batch_size", "device"}}``; a
  run of a named model (``--model``) records the model's identity (``sha256`` over its
  files' checksums) under ``model``, with ``config`` ``file`` and ``sha256`` null and
  ``weights`` null;
* ``results.jsonl`` lines: ``{"image_id", "file_name", "height", "width", "results": [...]}``
  or ``{"image_id", "file_name", "error"}``.
"""

from .checks import check_output_folder, compare_settings, resolve_detect_vocabulary
from .layout import FINAL_FILES, JOURNAL, MANIFEST
from .run import run_detect

__all__ = [
    "FINAL_FILES",
    "JOURNAL",
    "MANIFEST",
    "check_output_folder",
    "compare_settings",
    "resolve_detect_vocabulary",
    "run_detect",
]
