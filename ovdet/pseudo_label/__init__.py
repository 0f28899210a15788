"""Pseudo-boxes from a teacher detector: the library of ``ovdet pseudo-label``.

:func:`run_pseudo_label` labels every input image with a teacher
(:mod:`~ovdet.pseudo_label.teachers`: any ovdet detector, by name or config + weights), keeps
the boxes the filters let through (:mod:`~ovdet.pseudo_label.filters`: score thresholds,
global and per class, per-class and class-agnostic NMS, a maximum per image; optionally only
the classes each image's captions mention, :mod:`~ovdet.pseudo_label.captions`) and writes
them as one COCO dataset. Everything is checked before the model is built (options,
vocabulary, files, inputs, output folder, another run in it).

Output folder (``--output``)::

    run.json             the run's manifest: teacher, vocabulary, filters, captions, images
    labels.jsonl         the journal: one json line per image, appended and fsynced per batch
    pseudo_labels.json   } written atomically when every image is done, from the journal
    summary.json         }
    errors.json          }
    shards/<i>/          run.json and labels.jsonl of shard i (sharded runs)

* ``pseudo_labels.json``: ``{"images": [{"id", "file_name", "width", "height"}],
  "categories": [{"id", "name"[, "novel"]}], "annotations": [{"id", "image_id",
  "category_id", "bbox" (XYWH, original pixels), "area", "score", "iscrowd": 0[,
  "segmentation" (RLE)[, "mask_score"]]}]}``. Category ids are 1..C in vocabulary order;
  ``novel`` (a bool) is there when the teacher knows which classes it saw boxes for (a named
  model's ``base`` classes: every other class is novel). Annotation ids are 1..N by image,
  then by descending score; ``score`` is the teacher's. ``segmentation`` is present when the
  teacher has masks or ``--sam`` is given (SAM prompted with the kept boxes,
  :mod:`ovdet.modeling.sam`; then ``mask_score`` is SAM's predicted IoU), and ``area`` is
  then the mask's pixel count (else the box's w * h). ``images`` lists the images that were
  read (an image without boxes included). It loads with pycocotools' ``COCO`` and
  detectron2's ``register_coco_instances`` (``image_root``: ``""`` for
  ``--input``, the ``--image-root`` for ``--coco-json``).
* Image ids and file names: for ``--input`` (files, folders, globs, as ``ovdet detect``) the
  1-based position in the input list and the path as found; for ``--coco-json FILE
  --image-root DIR`` the json's ids and ``file_name``.
* ``summary.json``: ``{"images", "images_with_boxes", "unreadable_images", "boxes",
  "boxes_per_class": {name: count}, "score_histogram": {"bins": [0, 0.1, ..., 1], "counts":
  [10 counts]}}`` (the last bin includes 1.0).
* ``errors.json``: ``[{"image_id", "file_name", "error"}]``: images that could not be read,
  skipped (the run goes on) and retried by the next run with the same settings.

**Streaming.** Labels are never held for more than one batch: the journal keeps only each
image's offset in ``labels.jsonl``, and the final files are written by reading the journal
back image by image.

**Resume.** A run killed at any point and started again with the same settings into the same
folder skips the images its journal records and ends with exactly the bytes of an
uninterrupted run. A run with other settings (teacher model or config/weights content,
vocabulary, filters, captions file content, inputs, shard) into a folder holding another run
is refused, naming what differs; ``--overwrite`` deletes that run's files and starts over.
The batch size and device may change on a resume (scores may then differ in the last digits).

**Sharding.** ``--num-shards N --shard-index I`` labels the images at positions I, I + N,
I + 2N, ... of the input list into ``DIR/shards/I/`` (each shard resumes on its own);
``ovdet pseudo-label --merge-shards DIR`` (:func:`merge_shards`) checks that the N shards are
runs with the same settings and finished, and writes ``DIR/pseudo_labels.json``,
``summary.json`` and ``errors.json``: the same bytes as one process. Under torch.distributed
(``torchrun``; initialised before the call) the shard is the rank and the count the world
size, and rank 0 merges after a barrier (a rank that fails leaves the others waiting at it).

**Captions** (``--captions FILE``): the classes an image's captions mention, as whole words
(case-insensitive, plural ``s`` allowed), are the only ones it can get boxes of; the teacher
scores the whole vocabulary. An image whose captions mention no class gets no boxes (and is
not shown to the teacher).
"""

from .captions import CaptionIndex, class_pattern, mentioned_classes
from .filters import FilterSettings, check_filter_settings, filter_detections, parse_class_thresh
from .run import run_pseudo_label
from .shards import merge_shards
from .teachers import DetectorTeacher, PseudoLabelTeacher, build_detector_teacher
from .writer import LabelJournal, write_outputs

__all__ = [
    "CaptionIndex",
    "DetectorTeacher",
    "FilterSettings",
    "LabelJournal",
    "PseudoLabelTeacher",
    "build_detector_teacher",
    "check_filter_settings",
    "class_pattern",
    "filter_detections",
    "mentioned_classes",
    "merge_shards",
    "parse_class_thresh",
    "run_pseudo_label",
    "write_outputs",
]
