"""HierKD's instance level in a two-stage detector: L2 to an online teacher on predicted boxes
that match a ground-truth box (docs/methods.md#hierkd).

The official instance level (mengqiDyangge/HierKD,
``mmdet/models/dense_heads/atss_zsd_sfl_head.py::ATSSZSDSFLHead.distill_instance`` with
``dist_instance_type="KD_L2Loss"``, ``dist_instance_weight=0.05``, ``dist_instance_box="pred"``,
``instance_iou_thresh=0.5``, ``dist_instance_size=1.0``): for every positive anchor of the
one-stage ATSS head whose predicted box has IoU >= 0.5 with its assigned ground-truth box, the
anchor's normalised embedding ``e`` is pulled towards the CLIP ViT-B/32 embedding ``v`` of the
predicted box, cropped from the network input online::

    loss_dist_ins = 0.05 * mean_r ||e_r - v_r||_2          (``KD_L2Loss``: the L2 norm, not
                                                           squared; per FPN level, then
                                                           averaged over the 5 levels)

ovdet's two-stage counterpart (:class:`HierKDInstanceDistiller`): an RPN proposal is the box the
detector predicted from an anchor, and its region embedding (the classifier's, through the box
head) is what classifies it. The distilled regions are the training step's RPN proposals
whose IoU with some ground-truth box is >= 0.5 (the ROI heads' foreground proposals), at
most ``max_per_image`` of them per image (default 128, the foreground budget of detectron2's
ROI sampler: 512 x 0.25), chosen at random by a generator the distiller holds; their teacher
embeddings come from an online region teacher on the augmented image
(:class:`~ovdet.teacher.online.OnlineRegionTeacher`, one 1.0x crop as in the official code).

Remaining differences: the official code averages per FPN level then over levels, and crops
from the normalised network input with a keep-ratio resize and zero padding to 224; ovdet
averages over all distilled regions of the batch and crops with the teacher's own
preprocessing. The cost is that of the official code: up to ``max_per_image`` crops per image
through CLIP every iteration (a GPU job).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from detectron2.structures import Boxes, pairwise_iou
from torch import nn

from ovdet.modeling.distill import DistillContext
from ovdet.modeling.distill.functional import normalised_pair, zero_loss

__all__ = [
    "HIERKD_INSTANCE_IOU",
    "HIERKD_INSTANCE_WEIGHT",
    "HierKDInstanceDistillation",
    "HierKDInstanceDistiller",
]

HIERKD_INSTANCE_WEIGHT = 0.05  # dist_instance_weight of the distill_ins_and_featmap configs
HIERKD_INSTANCE_IOU = 0.5  # instance_iou_thresh (configs/_base_/models/atss_r50_fpn_zsd.py)


class HierKDInstanceDistillation(nn.Module):
    """HierKD's instance objective (the official ``KD_L2Loss``) on row-paired embeddings.

    With E (student) and V (teacher) the (N, D) L2-normalised embeddings of the N regions::

        loss_hierkd_instance = weight * (1/N) * sum_r ||e_r - v_r||_2

    The teacher is detached; N = 0 gives a zero connected to the student's graph.

    Args:
        weight: loss weight (official: 0.05).
    """

    def __init__(self, weight: float = HIERKD_INSTANCE_WEIGHT) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(
        self, student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            student_embeddings: (N, D) region embeddings of the distilled regions.
            teacher_embeddings: (N, D) teacher embeddings of the same regions (row-aligned).

        Returns:
            ``{"loss_hierkd_instance": scalar}``.
        """
        student, teacher = normalised_pair(
            student_embeddings, teacher_embeddings, "HierKDInstanceDistillation"
        )
        if student.shape[0] == 0:
            return {"loss_hierkd_instance": zero_loss(student_embeddings)}
        distance = (student - teacher).norm(dim=-1).mean()
        return {"loss_hierkd_instance": self.weight * distance}

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class HierKDInstanceDistiller(nn.Module):
    """HierKD instance level of an OV R-CNN: foreground RPN proposals vs an online teacher.

    Per image: the RPN proposals of the step (``context.proposals[i].proposal_boxes``, treated
    as fixed) whose best IoU with the image's ground-truth boxes (``instances.gt_boxes``) is
    >= ``iou_threshold``; at most ``max_per_image`` of them, drawn at random by this module's
    generator. Student: ``model.roi_heads.region_embeddings`` of those boxes. Teacher:
    ``teacher`` called on ``[{"image": ..., "teacher_proposals": boxes}, ...]`` under no_grad
    (an :class:`~ovdet.teacher.online.OnlineRegionTeacher`, or any callable returning one
    (M_i, D) tensor per image). See the module docstring for how this maps to the official
    one-stage objective.

    The teacher is not a submodule (its frozen weights are not part of the detector's
    ``parameters()`` or ``state_dict``); the generator's state is not checkpointed.

    Args:
        objective: :class:`HierKDInstanceDistillation` (or any ``(student, teacher) -> dict``).
        teacher: the online region teacher.
        iou_threshold: minimum IoU of a proposal with a ground-truth box (official: 0.5).
        max_per_image: at most this many regions per image; None: all.
        seed: seed of the sampling generator.
    """

    def __init__(
        self,
        objective: nn.Module,
        teacher: Callable[[list[dict]], Sequence[torch.Tensor]],
        *,
        iou_threshold: float = HIERKD_INSTANCE_IOU,
        max_per_image: int | None = 128,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not callable(teacher):
            raise TypeError(
                "HierKDInstanceDistiller: teacher must be callable (a list of {'image', "
                f"'teacher_proposals'}} dicts -> list of (M_i, D)), got {type(teacher).__name__}; "
                "use ovdet.teacher.online.OnlineRegionTeacher"
            )
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(
                f"HierKDInstanceDistiller: iou_threshold must be in (0, 1], got {iou_threshold}"
            )
        if max_per_image is not None and (isinstance(max_per_image, bool) or max_per_image < 1):
            raise ValueError(
                f"HierKDInstanceDistiller: max_per_image must be an int >= 1 or None, got "
                f"{max_per_image!r}"
            )
        self.objective = objective
        self.iou_threshold = float(iou_threshold)
        self.max_per_image = None if max_per_image is None else int(max_per_image)
        self._generator = torch.Generator().manual_seed(int(seed))
        # Not registered as a submodule on purpose: see the class docstring.
        object.__setattr__(self, "teacher", teacher)

    def select(self, gt_boxes: Boxes, proposal_boxes: Boxes) -> Boxes:
        """The proposals distilled for one image (``iou_threshold``, ``max_per_image``)."""
        if len(gt_boxes) == 0 or len(proposal_boxes) == 0:
            return Boxes(proposal_boxes.tensor[:0])
        best = pairwise_iou(gt_boxes, proposal_boxes).max(dim=0).values
        keep = torch.nonzero(best >= self.iou_threshold).flatten()
        if self.max_per_image is not None and len(keep) > self.max_per_image:
            order = torch.randperm(len(keep), generator=self._generator)[: self.max_per_image]
            keep = keep[order.sort().values.to(keep.device)]
        return proposal_boxes[keep]

    def forward(self, context: DistillContext) -> dict[str, torch.Tensor]:
        """Instance distillation loss of one training step.

        Args:
            context: the step; reads ``context.proposals``, each input's ``instances`` and
                ``image``.

        Returns:
            the objective's ``loss_*`` dict (``loss_hierkd_instance``).
        """
        if len(context.proposals) != len(context.batched_inputs):
            raise ValueError(
                f"HierKDInstanceDistiller: {len(context.proposals)} proposal sets for "
                f"{len(context.batched_inputs)} images"
            )
        boxes: list[Boxes] = []
        for i, (x, proposals) in enumerate(zip(context.batched_inputs, context.proposals)):
            if "instances" not in x:
                raise KeyError(
                    f"HierKDInstanceDistiller: input {i} has no 'instances' (ground-truth "
                    "boxes); it distils proposals that match a ground-truth box"
                )
            found = proposals.proposal_boxes
            gt = x["instances"].gt_boxes.to(found.device)
            boxes.append(self.select(gt, Boxes(found.tensor.detach())))
        student = context.model.roi_heads.region_embeddings(context.features, boxes)
        regions = [
            {"image": x["image"], "teacher_proposals": b.tensor}
            for x, b in zip(context.batched_inputs, boxes)
        ]
        with torch.no_grad():
            teacher = list(self.teacher(regions))
        if len(teacher) != len(boxes) or any(
            t.ndim != 2 or t.shape[0] != len(b) for t, b in zip(teacher, boxes)
        ):
            raise ValueError(
                "HierKDInstanceDistiller: the teacher must return one (M_i, D) tensor per image, "
                f"row-aligned with the boxes; got shapes {[tuple(t.shape) for t in teacher]} for "
                f"{[len(b) for b in boxes]} boxes"
            )
        dim = student.shape[1]
        target = torch.cat(
            [
                t.detach().to(device=student.device, dtype=student.dtype)
                if len(t)
                else student.new_zeros(0, dim)
                for t in teacher
            ]
        )
        return self.objective(student, target)

    def extra_repr(self) -> str:
        return (
            f"teacher={type(self.teacher).__name__}, iou_threshold={self.iou_threshold}, "
            f"max_per_image={self.max_per_image}"
        )
