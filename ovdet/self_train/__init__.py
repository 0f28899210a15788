"""Self-training: rounds of label -> merge -> train -> evaluate (``ovdet self-train``).

A round takes a teacher detector (round 1: the given config + weights; round r: round
r - 1's student) and

1. **labels** the gold training set's images with it (:mod:`ovdet.pseudo_label`: streamed,
   resumable; every class of the config's test vocabulary, boxes scoring >= ``low``);
2. **merges** gold and pseudo boxes (:mod:`~ovdet.self_train.merge`: gold wins on overlap,
   pseudo boxes >= ``high`` become labels, the band [``low``, ``high``) ignore regions);
3. **trains** the student: the same config on the merged labels, its training vocabulary
   widened to every class (:mod:`~ovdet.self_train.student`), starting from the teacher's
   weights (``init="teacher"``) or the config's initialisation (``"scratch"``);
4. **evaluates** it on the config's test set (box and, with masks, segm AP);
5. with ``control=True`` (``--control``), trains and evaluates the round's **gold-only
   control**: the teacher's config on the gold boxes alone, the student's schedule and
   start (round 1: the teacher; round r: round r - 1's control), so a student's gain can be
   told from what the extra iterations alone give.

Output folder::

    self_train.json      manifest: settings and each finished step's record
    round_<r>/labels/    the pseudo-label run (pseudo_labels.json, summary.json, journal)
    round_<r>/train.json the merged training set (COCO; ignore regions are iscrowd 1)
    round_<r>/model/     the student's checkpoints and metrics.json (model_final.pth)
    round_<r>/result.json  the student's test metrics
    round_<r>/control/   the gold-only control's checkpoints and result.json (--control)
    summary.json         every round's labels, merge statistics and metrics

**Resume.** Each step is recorded in the manifest after its files are written atomically; a
killed run started again with the same command goes on at its first unfinished step (the
labelling resumes from its journal and training from its newest checkpoint). More rounds
can be added later with a larger ``--rounds``. Another run's folder (other settings) is
refused, naming what differs; ``--overwrite`` starts over.

Configs: any ovdet detector config whose classifier has ``train_embeddings`` /
``test_embeddings`` and whose training set is a registered COCO json (every OV-COCO,
OV-LVIS and OV-Shapes config). See ``docs/self_training.md``.
"""

from .merge import MergeSettings, check_merge_settings, merge_pseudo_labels
from .run import run_self_train
from .student import control_config, gold_dataset, student_config

__all__ = [
    "MergeSettings",
    "check_merge_settings",
    "control_config",
    "gold_dataset",
    "merge_pseudo_labels",
    "run_self_train",
    "student_config",
]
