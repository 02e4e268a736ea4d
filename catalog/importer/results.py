"""What an import did or would do: a plan per row, every error, and the counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import models

from catalog.images import ImageRef
from catalog.importer.formats import ImportKind, RowError, RowErrors


class ImportAction(models.TextChoices):
    CREATE = "create", "will be created"
    UPDATE = "update", "will be updated"
    UNCHANGED = "unchanged", "unchanged"


@dataclass(frozen=True)
class Change:
    """One field of an existing product that the row changes: from what, to what."""

    field: str
    old: object
    new: object

    def __str__(self) -> str:
        if self.field == "image":
            return "new photo"
        return f"{self.field}: {_shown(self.old)} → {_shown(self.new)}"


def _shown(value: object) -> str:
    text = "—" if value in (None, "") else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


@dataclass(slots=True)
class RowPlan:
    line: int
    sku: str
    action: ImportAction
    changes: Sequence[Change] = ()  # a tuple when there are none: no empty list per row
    bestseller: str = ""  # "becomes a bestseller" / "no longer a bestseller" when sales flip it
    # What the preview shows beside the sku so a reviewer can tell the rows apart: the row's
    # name (when the file has the column) and its photo (shared with every row naming it).
    name: str = ""
    photo: ImageRef | None = None

    @property
    def changed_fields(self) -> list[str]:
        return [change.field for change in self.changes]


@dataclass
class ImportResult:
    kind: ImportKind | None
    dry_run: bool
    rows: list[RowPlan] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=RowErrors)  # the first ones, all counted
    applied: bool = False
    photos: object = None  # a checked dry run's stored photos (sources.Photos), kept for its write

    def _count(self, action: ImportAction) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def created(self) -> int:
        return self._count(ImportAction.CREATE)

    @property
    def updated(self) -> int:
        return self._count(ImportAction.UPDATE)

    @property
    def unchanged(self) -> int:
        return self._count(ImportAction.UNCHANGED)

    @property
    def failed(self) -> int:
        """Rows with at least one error (file-level errors count as one)."""
        if isinstance(self.errors, RowErrors):
            return self.errors.lines
        return len({error.line for error in self.errors})

    @property
    def error_count(self) -> int:
        """Every error found, kept or only counted."""
        return getattr(self.errors, "total", len(self.errors))

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed_skus(self) -> list[str]:
        return [row.sku for row in self.rows if row.action != ImportAction.UNCHANGED]

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.failed} failed"
        )
