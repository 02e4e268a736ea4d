"""The performance import: check a file (what it would write, what it cannot match, what it
repeats), then write the matched days in short transactions. The admin's import as a job
(performance.jobs) and `manage.py import_performance` call these same functions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from catalog.importer.formats import HeaderErrors, ImportAborted, RowError, RowErrors
from performance.csvfile import PerformanceRow, read_rows
from performance.matching import Matcher
from performance.models import ChannelDay, PerformanceImport

REPORT_LIMIT = 1000  # of each list a PerformanceImport keeps for its page; all are counted
# What an import counts, as PerformanceImport's fields of the same names.
COUNTS = ("rows", "matched", "unmatched", "duplicates", "created", "updated", "unchanged", "errors")


class DayAction(models.TextChoices):
    CREATE = "create", "new"
    UPDATE = "update", "figures change"
    UNCHANGED = "unchanged", "unchanged"


@dataclass
class PlannedDay:
    """A matched row: the day it writes, and what that does to the figures already there."""

    line: int
    sku: str
    preset_name: str
    asset_id: int
    preset_id: int
    date: date
    figures: dict[str, object]
    action: DayAction = DayAction.CREATE
    changes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int, date]:
        return (self.asset_id, self.preset_id, self.date)


@dataclass(frozen=True)
class Unmatched:
    line: int
    sku: str
    preset_name: str
    date: date
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """A row about the same image, preset and day as an earlier row: only the first counts."""

    line: int
    first_line: int
    sku: str
    preset_name: str
    date: date
    same_figures: bool


@dataclass
class PerformancePlan:
    """What a file would do, row by row, and every error."""

    rows: int = 0
    days: list[PlannedDay] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    errors: RowErrors = field(default_factory=RowErrors)

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, action: DayAction) -> int:
        return sum(1 for day in self.days if day.action == action)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "matched": len(self.days),
            "unmatched": len(self.unmatched),
            "duplicates": len(self.duplicates),
            "created": self.count(DayAction.CREATE),
            "updated": self.count(DayAction.UPDATE),
            "unchanged": self.count(DayAction.UNCHANGED),
            "errors": self.errors.total,
        }

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{c['rows']} rows: {c['matched']} matched ({c['created']} new, {c['updated']} "
            f"updated, {c['unchanged']} unchanged), {c['unmatched']} unmatched, "
            f"{c['duplicates']} duplicates, {c['errors']} errors"
        )

    def report(self) -> dict:
        """The lists the import's page shows, the first REPORT_LIMIT of each, as JSON."""
        return {
            "errors": [str(error) for error in self.errors[:REPORT_LIMIT]],
            "unmatched": [
                [row.line, row.sku, row.preset_name, row.date.isoformat(), row.reason]
                for row in self.unmatched[:REPORT_LIMIT]
            ],
            "duplicates": [
                [
                    row.line,
                    row.first_line,
                    row.sku,
                    row.preset_name,
                    row.date.isoformat(),
                    row.same_figures,
                ]
                for row in self.duplicates[:REPORT_LIMIT]
            ],
            "updates": [
                [day.line, day.sku, day.preset_name, day.date.isoformat(), "; ".join(day.changes)]
                for day in self.days
                if day.action == DayAction.UPDATE
            ][:REPORT_LIMIT],
        }


def _figures_changed(existing: ChannelDay, figures: dict[str, object]) -> list[str]:
    """The figures a row changes, as "clicks 10 → 12"; a column the file lacks changes nothing."""
    return [
        f"{name} {getattr(existing, name)} → {value}"
        for name, value in figures.items()
        if getattr(existing, name) != value
    ]


def performance_check(*, data: bytes) -> PerformancePlan:
    """Read, clean and match a file against the images and the figures stored now. Writes
    nothing."""
    plan = PerformancePlan()
    try:
        rows = read_rows(data, plan.errors)
    except ImportAborted as exc:
        plan.errors.append(exc.error)
        return plan
    except HeaderErrors as exc:
        plan.errors.extend(exc.errors)
        return plan
    plan.rows = len(rows) + plan.errors.lines
    matcher = Matcher(skus=[row.sku for row in rows])
    first_of: dict[tuple[int, int, date], PlannedDay] = {}
    for row in rows:
        match = matcher.match(sku=row.sku, preset_name=row.preset_name, day=row.date)
        if row.preset_id is not None and match.preset_id not in (None, row.preset_id):
            plan.errors.append(
                RowError(
                    row.line,
                    "image_url",
                    f"is the image of preset {row.preset_id}, not of {row.preset_name!r}",
                )
            )
            continue
        if match.asset_id is None:
            plan.unmatched.append(
                Unmatched(row.line, row.sku, row.preset_name, row.date, match.reason)
            )
            continue
        day = _planned(row, match.asset_id, match.preset_id)
        if (first := first_of.get(day.key)) is not None:
            plan.duplicates.append(
                Duplicate(
                    row.line,
                    first.line,
                    row.sku,
                    row.preset_name,
                    row.date,
                    first.figures == day.figures,
                )
            )
            continue
        first_of[day.key] = day
        plan.days.append(day)
    _compare_with_stored(plan.days)
    return plan


def _planned(row: PerformanceRow, asset_id: int, preset_id: int) -> PlannedDay:
    return PlannedDay(
        line=row.line,
        sku=row.sku,
        preset_name=row.preset_name,
        asset_id=asset_id,
        preset_id=preset_id,
        date=row.date,
        figures=row.figures,
    )


def _chunks(days: Sequence[PlannedDay]) -> Iterator[Sequence[PlannedDay]]:
    size = max(settings.CATALOG_IMPORT_CHUNK_ROWS, 1)
    for start in range(0, len(days), size):
        yield days[start : start + size]


def _stored(days: Sequence[PlannedDay], *, lock: bool = False) -> dict:
    """The stored rows of these days, by key (locked for the write when `lock`)."""
    rows = ChannelDay.objects.filter(
        asset_id__in={day.asset_id for day in days}, date__in={day.date for day in days}
    )
    if lock:
        rows = rows.select_for_update()
    return {(row.asset_id, row.preset_id, row.date): row for row in rows}


def _compare_with_stored(days: Sequence[PlannedDay]) -> None:
    """Set each day's action against what is stored now."""
    for chunk in _chunks(days):
        stored = _stored(chunk)
        for day in chunk:
            existing = stored.get(day.key)
            if existing is None:
                day.action, day.changes = DayAction.CREATE, []
            else:
                day.changes = _figures_changed(existing, day.figures)
                day.action = DayAction.UPDATE if day.changes else DayAction.UNCHANGED


def performance_write(*, plan: PerformancePlan, source: PerformanceImport | None = None) -> None:
    """Write the plan's matched days, one short transaction per chunk. Each chunk compares
    with the rows as they are when it locks them, so the plan's actions and counts say what
    was written, even when another import wrote the same days since the check."""
    if not plan.ok:
        raise ValueError("a plan with errors is not written")
    for chunk in _chunks(plan.days):
        with transaction.atomic():
            stored = _stored(chunk, lock=True)
            new = []
            for day in chunk:
                existing = stored.get(day.key)
                if existing is None:
                    day.action, day.changes = DayAction.CREATE, []
                    new.append(
                        ChannelDay(
                            asset_id=day.asset_id,
                            preset_id=day.preset_id,
                            date=day.date,
                            source=source,
                            **day.figures,
                        )
                    )
                    continue
                day.changes = _figures_changed(existing, day.figures)
                day.action = DayAction.UPDATE if day.changes else DayAction.UNCHANGED
                if day.changes:
                    for name, value in day.figures.items():
                        setattr(existing, name, value)
                    existing.source = source
                    existing.save(update_fields=[*day.figures, "source", "updated_at"])
            ChannelDay.objects.bulk_create(new)
        if source is not None and source.pk is not None:  # a sign of life for the sweeper
            PerformanceImport.objects.filter(pk=source.pk).update(heartbeat_at=timezone.now())


def performance_import_record(*, job: PerformanceImport, plan: PerformancePlan) -> None:
    """Copy the plan's counts and lists onto the import (not saved)."""
    for name, value in plan.counts().items():
        setattr(job, name, value)
    job.report = plan.report()


def performance_import_run(*, data: bytes, csv_name: str, user=None) -> PerformanceImport:
    """Check and write a file at once, recorded like an upload (`manage.py
    import_performance`): a file with any error writes nothing and is recorded as refused."""
    plan = performance_check(data=data)
    if plan.ok:
        job = PerformanceImport.objects.create(
            requested_by=user,
            token=uuid.uuid4().hex,
            csv_name=csv_name,
            state=PerformanceImport.State.WRITING,
        )
        performance_write(plan=plan, source=job)
    else:
        job = PerformanceImport(requested_by=user, token=uuid.uuid4().hex, csv_name=csv_name)
    performance_import_record(job=job, plan=plan)
    job.state = PerformanceImport.State.DONE if plan.ok else PerformanceImport.State.REFUSED
    job.finished_at = timezone.now()
    job.save()
    return job
