"""Validation of a COCO-format dataset before training on it (``ovdet data check``).

:func:`check_coco_dataset` reads a COCO instances json (and optionally looks at its images)
and returns a :class:`CheckReport`: every problem found, grouped by kind (``code``), each
with a count, the first offending entries (index, id, field, value) and what to do. *Errors*
make training crash or learn from wrong data; *warnings* are legal but worth a look.

What is checked:

* json: valid json (the line of a syntax error, e.g. a trailing comma), a json object with
  ``images``, ``annotations`` and ``categories`` lists of objects;
* ids: integers (not strings, floats or booleans), unique per list, annotations referring to
  existing images and categories; annotation id 0 (pycocotools never counts a match to it);
* images: ``file_name`` (text), ``height``/``width`` (positive integers); with an image
  folder, each file exists (``images="exist"``, a directory listing per folder: fast) or is
  decoded and its size, after EXIF rotation as detectron2 reads it, compared with
  ``height``/``width`` (``images="decode"``); images without annotations (warning);
* categories: ``name`` (text), duplicate names (warning), categories no annotation uses
  (warning, e.g. the unused superclass of Roboflow exports);
* boxes: ``[x, y, width, height]`` of 4 finite numbers, no negative size (zero size:
  warning, the mapper drops them), inside the image (slightly outside: warning; far outside:
  error), files whose boxes are ``[x1, y1, x2, y2]`` or normalised to [0, 1];
* areas: missing (warning), not a number, zero, larger than the box, far from the polygon's
  area (warnings);
* segmentations: polygons as lists of lists (not a flat list) of at least 3 points (a short
  polygon beside valid ones: warning), finite coordinates, RLE ``size`` equal to the image's
  ``[height, width]``, masks on some annotations only (warning); ``iscrowd`` 0 or 1.

Valid files written by common tools pass without errors: labelme2coco, CVAT's COCO export
(``attributes`` dicts, ``segmentation: []`` for boxes), Roboflow's export (a category 0
superclass no annotation uses, image id 0, ``extra`` fields) and COCO itself.
"""

from __future__ import annotations

from ovdet.data.check.api import (
    IMAGE_MODES,
    check_coco_dataset,
    check_coco_dict,
    check_registered_dataset,
)
from ovdet.data.check.fields import is_int_id as is_int_id
from ovdet.data.check.fields import is_number as is_number
from ovdet.data.check.report import CheckReport, Issue

__all__ = [
    "IMAGE_MODES",
    "CheckReport",
    "Issue",
    "check_coco_dataset",
    "check_coco_dict",
    "check_registered_dataset",
]
