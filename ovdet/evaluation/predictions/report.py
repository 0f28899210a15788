"""What a join produced: the joined results and the :class:`JoinReport` of how."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JoinReport:
    """How predictions were joined to the ground truth (see :mod:`ovdet.evaluation.predictions`).

    Attributes:
        categories_by: ``"name"``, ``"id"`` or ``"contiguous index"``.
        images_by: ``"file name"`` or ``"id"``.
        category_names: category names matched (``"name"``), of which
            ``category_ids_changed`` had another id in the predictions.
        image_matches: how many image names matched each way (``"same path"``, ``"relative
            to the image root"``, ``"trailing path"``, ``"basename"``, ``"stem"``).
        image_ids_changed: images whose id in the predictions differed from the GT's.
        predictions: predictions kept; ``dropped``: predictions of unknown images or
            categories dropped (``drop_unknown``).
        verification: the outcome of the check of a join by ids, or why there was none.
    """

    categories_by: str = "id"
    images_by: str = "id"
    category_names: int = 0
    category_ids_changed: int = 0
    image_matches: dict[str, int] = field(default_factory=dict)
    image_ids_changed: int = 0
    predictions: int = 0
    dropped: int = 0
    verification: str = ""

    def describe(self) -> str:
        """One line for the user: how categories and images were joined."""
        if self.categories_by == "name":
            cats = (
                f"categories by name ({self.category_names} names matched, "
                f"{self.category_ids_changed} with another id than the ground truth's)"
            )
        elif self.categories_by == "contiguous index":
            cats = "categories by detectron2's contiguous index (the GT's ids in sorted order)"
        else:
            cats = "categories by id"
        if self.images_by == "file name":
            ways = ", ".join(f"{n} by {way}" for way, n in self.image_matches.items() if n)
            imgs = (
                f"images by file name ({ways}; {self.image_ids_changed} with another id than "
                "the ground truth's)"
            )
        else:
            imgs = "images by id"
        text = f"joined {self.predictions} predictions to the ground truth: {cats}; {imgs}"
        if self.dropped:
            text += f"; dropped {self.dropped} predictions of images/categories not in the GT"
        if self.verification:
            text += f"; {self.verification}"
        return text

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class JoinedPredictions:
    """Result dicts with ground-truth ``image_id`` / ``category_id``, and how they were made."""

    results: list[dict]
    report: JoinReport
