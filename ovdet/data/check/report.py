"""What a check found: :class:`Issue` (one kind of problem), :class:`CheckReport` and the
collector that accumulates issues by code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ovdet.data.datasets import COCOFormatError

MAX_EXAMPLES = 5


@dataclass
class Issue:
    """One kind of problem found by a check.

    Attributes:
        code: stable identifier, e.g. ``"bbox.negative_size"``.
        severity: ``"error"`` or ``"warning"``.
        message: what is wrong and what to do.
        count: how many entries have it.
        examples: the first offending entries (``"annotations[3] (id=7): bbox=[...]"``).
    """

    code: str
    severity: str
    message: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def one_line(self, max_examples: int = 3) -> str:
        shown = "; ".join(self.examples[:max_examples])
        more = f" (+{self.count - max_examples} more)" if self.count > max_examples else ""
        return f"[{self.code}] {self.count}x {self.message}" + (
            f" — e.g. {shown}{more}" if shown else ""
        )

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "count": self.count,
            "examples": list(self.examples),
        }


@dataclass
class CheckReport:
    """The result of :func:`check_coco_dataset`.

    Attributes:
        source: the json file (or a description of the dict) that was checked.
        issues: every kind of problem found, errors first.
        stats: ``images``, ``annotations``, ``categories`` (counts), ``images_checked``
            (``"none"``, ``"exist"`` or ``"decode"``) and ``image_root``.
    """

    source: str
    issues: list[Issue] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        """Problems that make training crash or learn from wrong data."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Legal but suspicious content."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def codes(self, severity: str | None = None) -> set[str]:
        """Codes of the issues found (of one severity if given)."""
        return {i.code for i in self.issues if severity is None or i.severity == severity}

    def get(self, code: str) -> Issue | None:
        """The issue with ``code``, or None."""
        return next((i for i in self.issues if i.code == code), None)

    def summary(self, max_issues: int = 5) -> str:
        """One paragraph naming the errors (for an exception message)."""
        errs = self.errors
        head = f"{self.source}: {len(errs)} kind(s) of error in the COCO dataset: "
        body = " | ".join(i.one_line() for i in errs[:max_issues])
        more = f" | (+{len(errs) - max_issues} more kinds)" if len(errs) > max_issues else ""
        return head + body + more + f". Run `ovdet data check {self.source}` for the full list."

    def raise_if_errors(self) -> CheckReport:
        """Raise :class:`~ovdet.data.datasets.COCOFormatError` with :meth:`summary` if there
        is an error; returns the report otherwise."""
        if self.errors:
            raise COCOFormatError(self.summary())
        return self

    def format(self, max_examples: int = MAX_EXAMPLES) -> str:
        """Multi-line human-readable report: errors, then warnings, each with examples."""
        s = self.stats
        lines = [
            f"{self.source}: {s.get('images', '?')} images, {s.get('annotations', '?')} "
            f"annotations, {s.get('categories', '?')} categories; image files: "
            + _images_checked_text(s.get("images_checked", "none"), s.get("image_root"))
        ]
        for title, group in (("errors", self.errors), ("warnings", self.warnings)):
            if not group:
                continue
            lines.append(f"{title} ({len(group)} kinds, {sum(i.count for i in group)} entries):")
            for issue in group:
                lines.append(f"  [{issue.code}] {issue.count}x {issue.message}")
                for ex in issue.examples[:max_examples]:
                    lines.append(f"      {ex}")
                if issue.count > max_examples:
                    lines.append(f"      ... and {issue.count - max_examples} more")
        if self.ok:
            lines.append(
                "OK: no errors"
                + (f" ({len(self.warnings)} kinds of warning)" if self.issues else "")
            )
        else:
            lines.append(f"FAILED: {len(self.errors)} kinds of error; fix them before training.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "ok": self.ok,
            "stats": dict(self.stats),
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }


def _images_checked_text(mode: str, root: str | None) -> str:
    if mode == "none" or root is None:
        return "not checked (give the image folder to check them)"
    what = "exist" if mode == "exist" else "decoded and sizes compared"
    return f"{what} under {root}"


class Collector:
    """Accumulates issues by code (first message wins), keeping the first examples."""

    def __init__(self) -> None:
        self._issues: dict[str, Issue] = {}

    def add(self, code: str, severity: str, message: str, example: object = None) -> None:
        issue = self._issues.get(code)
        if issue is None:
            issue = self._issues[code] = Issue(code, severity, message)
        issue.count += 1
        if example is not None and len(issue.examples) < MAX_EXAMPLES:
            issue.examples.append(str(example))

    def set_count(self, code: str, count: int) -> None:
        """For file-level issues: the number of entries concerned, not of reports."""
        self._issues[code].count = count

    def issues(self) -> list[Issue]:
        out = list(self._issues.values())
        return [i for i in out if i.severity == "error"] + [i for i in out if i.severity != "error"]
