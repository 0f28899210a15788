"""The part shared by the COCO and LVIS evaluators: collecting COCO-format results of the
processed images across processes, saving them, and choosing the tasks that can be scored."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from typing import Any

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ovdet.evaluation.results import instances_to_coco_results
from ovdet.utils.io import write_json

logger = logging.getLogger(__name__)

IOU_TYPES = ("bbox", "segm")


class ResultsCollector(DatasetEvaluator):
    """Base class: turns model outputs into COCO results and gathers them on the main process.

    Subclasses implement :meth:`evaluate` with :meth:`_gather`.
    """

    results_file = "instances_results.json"

    def __init__(
        self,
        dataset_name: str,
        output_dir: str | None,
        tasks: Sequence[str],
        *,
        distributed: bool,
        max_dets_per_image: int,
    ):
        bad = [t for t in tasks if t not in IOU_TYPES]
        if bad:
            raise ValueError(f"unknown tasks {bad}; use {list(IOU_TYPES)}")
        meta = MetadataCatalog.get(dataset_name)
        if meta.get("json_file") is None:
            raise ValueError(
                f"dataset '{dataset_name}' has no 'json_file' metadata; register it with "
                "ovdet.data.register_ov_dataset"
            )
        self._dataset_name = dataset_name
        self._metadata = meta
        self._json_file = meta.json_file
        self._output_dir = output_dir
        self._tasks = tuple(tasks)
        self._distributed = distributed
        self._max_dets = max_dets_per_image
        self._predictions: list[dict] = []

    def reset(self) -> None:
        self._predictions = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Convert one batch of model outputs to COCO results (kept in memory)."""
        reverse = {v: k for k, v in self._metadata.thing_dataset_id_to_contiguous_id.items()}
        for inp, out in zip(inputs, outputs):
            pred: dict[str, Any] = {"image_id": inp["image_id"], "results": []}
            if "instances" in out:
                pred["results"] = instances_to_coco_results(
                    out["instances"].to("cpu"),
                    inp["image_id"],
                    reverse,
                    with_masks="segm" in self._tasks,
                )
            self._predictions.append(pred)

    def _gather(self) -> tuple[list[int], list[dict], tuple[str, ...]] | None:
        """On the main process: (processed image ids, results, scorable tasks); else None.

        Results are saved to ``output_dir/results_file`` when an output folder is set;
        ``segm`` is dropped (with a warning) when the predictions carry no masks.
        """
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(self._predictions, dst=0)))
            if not comm.is_main_process():
                return None
        else:
            predictions = self._predictions
        if not predictions:
            logger.warning(f"{type(self).__name__}({self._dataset_name}) received no predictions")
            return None
        results = list(itertools.chain(*(p["results"] for p in predictions)))
        if self._output_dir:
            path = os.path.join(self._output_dir, self.results_file)
            write_json(path, results, newline=False)
            logger.info(f"Saved {len(results)} detections to {path}")
        tasks = self._tasks
        if "segm" in tasks and results and not all("segmentation" in r for r in results):
            logger.warning("predictions have no masks: skipping 'segm' evaluation")
            tasks = tuple(t for t in tasks if t != "segm")
        return sorted({p["image_id"] for p in predictions}), results, tasks
