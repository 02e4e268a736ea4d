"""The admin's performance import as a job: upload (checked at once when small, else by a
worker), preview, confirm, written by a worker; cancel; and the sweeper that sends again an
import whose message was lost. The file waits in the catalog import's private staging."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.importer.service import count_data_rows
from catalog.staging import MAX_AGE, StagedImport, staging_create, staging_discard, staging_get
from core.queue import enqueue_after_commit
from performance.models import PerformanceImport
from performance.services import (
    performance_check,
    performance_import_record,
    performance_write,
)

State = PerformanceImport.State
# A check or a chunk shows a sign of life; a waiting or running import without one for this
# long has lost its message or its worker (a 20 MB file's check takes about a minute).
STALLED_AFTER = timedelta(minutes=10)
FILE_GONE = "The uploaded file is gone (left unconfirmed for over a day); upload it again."


class NotWaiting(Exception):
    """The import is not waiting for a confirmation (confirmed or cancelled already)."""


def _step_import() -> dramatiq.Actor:
    """performance.tasks.step_performance_import, as the broker knows it (that module imports
    this one)."""
    return dramatiq.get_broker().get_actor("step_performance_import")


def performance_import_create(*, user, csv_file) -> PerformanceImport:
    """Keep the uploaded file and check it: at once when it has at most
    CATALOG_IMPORT_INLINE_ROWS rows (its preview is there when the page opens), else by a
    worker, the page following."""
    staged = staging_create(csv_file=csv_file)
    job = PerformanceImport.objects.create(
        requested_by=user,
        token=staged.token,
        csv_name=staged.csv_name,
        heartbeat_at=timezone.now(),
    )
    if count_data_rows(staged.csv_data()) <= settings.CATALOG_IMPORT_INLINE_ROWS:
        _check(job, staged)
    else:
        enqueue_after_commit(_step_import(), job.pk)
    return job


def _check(job: PerformanceImport, staged: StagedImport) -> None:
    """The preview: the counts and lists, saved only if the import still waits for them (a
    message delivered twice checks twice; the first result stands)."""
    PerformanceImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    plan = performance_check(data=staged.csv_data())
    performance_import_record(job=job, plan=plan)
    job.state = State.CHECKED if plan.ok else State.REFUSED
    job.finished_at = None if plan.ok else timezone.now()
    fields = ["state", "finished_at", "report", *plan.counts()]
    saved = PerformanceImport.objects.filter(pk=job.pk, state=State.QUEUED).update(
        **{name: getattr(job, name) for name in fields}
    )
    if saved and not plan.ok:
        staging_discard(staged)
    job.refresh_from_db()


def _take(job: PerformanceImport, to_state: str) -> StagedImport | None:
    """Move a checked import to `to_state`, once: a second confirmation (two tabs, a double
    click) finds it taken."""
    taken = PerformanceImport.objects.filter(pk=job.pk, state=State.CHECKED).update(
        state=to_state, heartbeat_at=timezone.now()
    )
    if not taken:
        raise NotWaiting(f"Import {job.pk} is not waiting for a confirmation any more.")
    job.state = to_state
    return staging_get(job.token)


def performance_import_confirm(*, job: PerformanceImport) -> PerformanceImport:
    """Queue a checked import to be written by a worker."""
    with transaction.atomic():
        _take(job, State.CONFIRMED)
        enqueue_after_commit(_step_import(), job.pk)
    return job


def performance_import_cancel(*, job: PerformanceImport) -> PerformanceImport:
    staged = _take(job, State.CANCELLED)
    job.finished_at = timezone.now()
    job.save(update_fields=["finished_at"])
    if staged is not None:
        staging_discard(staged)
    return job


def performance_import_step(*, job_id: int) -> None:
    """The worker's part: check a queued import, or write a confirmed one. Anything else (a
    message delivered twice, an import cancelled meanwhile) does nothing."""
    job = PerformanceImport.objects.filter(pk=job_id).first()
    if job is None or job.state not in PerformanceImport.RUNNING:
        return
    staged = staging_get(job.token)
    if staged is None:
        PerformanceImport.objects.filter(pk=job.pk, state=job.state).update(
            state=State.CANCELLED,
            finished_at=timezone.now(),
            report={**job.report, "errors": [FILE_GONE]},
        )
    elif job.state == State.QUEUED:
        _check(job, staged)
    else:
        _write(job, staged)


def _write(job: PerformanceImport, staged: StagedImport) -> None:
    """Write a confirmed import. The file is checked again first, since images may have been
    published or figures imported since the preview; the counts are what was written. A
    message delivered again after a worker died half way writes the rest: each chunk compares
    with what is stored, so what was written is counted as unchanged the second time."""
    moved = PerformanceImport.objects.filter(
        pk=job.pk, state__in=[State.CONFIRMED, State.WRITING]
    ).update(state=State.WRITING, heartbeat_at=timezone.now())
    if not moved:
        return
    plan = performance_check(data=staged.csv_data())
    if plan.ok:
        performance_write(plan=plan, source=job)
    job.refresh_from_db()
    performance_import_record(job=job, plan=plan)
    job.state = State.DONE if plan.ok else State.REFUSED
    job.finished_at = timezone.now()
    job.save()
    staging_discard(staged)


def performance_imports_sweep() -> int:
    """Send again every waiting or running import without a sign of life for STALLED_AFTER
    (its message lost: the broker was down, a worker was killed), and drop checked imports
    nobody confirmed within a day, with their files. Returns how many it sent."""
    now = timezone.now()
    for job in PerformanceImport.objects.filter(
        state=State.CHECKED, heartbeat_at__lt=now - MAX_AGE
    ):
        if PerformanceImport.objects.filter(pk=job.pk, state=State.CHECKED).update(
            state=State.CANCELLED, finished_at=now
        ):
            staged = staging_get(job.token)
            if staged is not None:
                staging_discard(staged)
    stalled = list(
        PerformanceImport.objects.filter(
            state__in=PerformanceImport.RUNNING, heartbeat_at__lt=now - STALLED_AFTER
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        PerformanceImport.objects.filter(pk__in=stalled).update(heartbeat_at=now)
        for pk in stalled:
            enqueue_after_commit(_step_import(), pk)
    return len(stalled)
