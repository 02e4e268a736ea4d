"""Imports as jobs: the web request stores the files and returns; a worker checks and writes.

    upload ─▶ queued ─▶ checking ─▶ checked ──confirm──▶ confirmed ─▶ writing ─▶ done
                                 └▶ refused (errors)                        └▶ failed / cancelled

The check is the import's dry run (every error with its line, column and reason; the plan of
every row); its preview and error report are kept in the storage for the import's page. The
write commits a chunk of rows at a time together with the line it reached and the counts, so a
worker killed in the middle resumes after that line when its message comes back (or the
sweeper sends it again) and the summary counts each row once. A running import can be
cancelled between chunks; what was written stays and is reported.

A worker holds a lease on the import (its heartbeat, renewed with every chunk and progress
update); a second delivery of the same message waits for the lease to run out.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from catalog.events import import_finished
from catalog.images import ImageRef
from catalog.importer.formats import ImportKind, RowError
from catalog.importer.results import ImportAction, ImportResult
from catalog.importer.service import (
    ChunkWritten,
    WriteStopped,
    catalog_import,
    catalog_import_in_chunks,
    count_data_rows,
)
from catalog.importer.sources import DirectoryImages, ImageSourceError, KnownPhotos, ZipImages
from catalog.indexing import refit_needed
from catalog.models import CatalogImport, IndexState, Product
from catalog.services import products_schedule_sync
from catalog.staging import MAX_AGE, StagedImport, staging_create, staging_discard
from catalog.upload_slices import (
    SlicedUpload,
    UploadRefused,
    upload_assemble,
    upload_get,
    upload_missing,
)
from core.queue import enqueue_after_commit, worker_name

logger = logging.getLogger(__name__)
State = CatalogImport.State
LEASE_SECONDS = 60  # a worker that has not shown a sign of life for this long is dead
PROGRESS_EVERY = 0.5  # seconds between progress updates of a check
PREVIEW_ROWS = 500  # rows of the plan kept for the preview page (the counts cover them all)
# Errors kept for the preview page: 200,000 bad rows make a page of the first ones, not of all;
# every error is in the downloadable report (errors.csv in the storage, not rows in the database).
PREVIEW_ERRORS = 200
MAX_ATTEMPTS = 5


class ImportBusy(Exception):
    """Another worker holds the import's lease: look again after `delay` seconds."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay


def _run_import() -> dramatiq.Actor:
    """catalog.import_tasks.run_import, as the broker knows it (that module imports this one)."""
    return dramatiq.get_broker().get_actor("run_import")


def report_name(job: CatalogImport, name: str) -> str:
    return f"imports/{job.pk}/{name}"


# --- requests from the web tier (each returns at once) -----------------------------------


def import_job_create(
    *,
    user,
    csv_file=None,
    zip_file=None,
    upload: SlicedUpload | None = None,
    kind: str = "",
    check_small_now: bool = False,
) -> CatalogImport:
    """Store the uploaded files (or take an upload whose slices have all arrived) and queue
    their check.

    With `check_small_now`, a file of at most CATALOG_IMPORT_INLINE_ROWS rows is checked here,
    in the upload's own request (well within its 2 s), so its preview is there at once; it is
    queued only if that check does not finish (the sweeper would find it too). An upload in
    slices counts as small only when its files fit in one slice together: its rows are counted
    from that slice, and the check assembles no more than that.
    """
    if upload is None:
        staged = staging_create(csv_file=csv_file, zip_file=zip_file)
        has_images = zip_file is not None
    else:
        staged, has_images, kind = upload.staged, upload.has_images, upload.kind
    with transaction.atomic():
        job = CatalogImport.objects.create(
            requested_by=user if user and user.is_authenticated else None,
            token=staged.token,
            csv_name=staged.csv_name[:255],
            has_images=has_images,
            requested_kind=kind or "",
        )
    if check_small_now and _small(staged, upload):
        try:
            import_job_run(job_id=job.pk, worker=f"web:{job.pk}")
        except Exception:
            logger.exception("import %s: the check in the upload's request failed", job.pk)
        job.refresh_from_db()
        if job.state not in CatalogImport.RUNNING:
            return job
    enqueue_after_commit(_run_import(), job.pk)
    return job


def _small(staged: StagedImport, upload: SlicedUpload | None) -> bool:
    if upload is None:
        csv_data = staged.csv_data()
    elif upload.fits_one_slice:
        csv_data = upload.read_slice("csv_file", 0)
    else:
        return False
    return count_data_rows(csv_data) <= settings.CATALOG_IMPORT_INLINE_ROWS


def import_job_create_from_slices(*, user, token: str) -> CatalogImport:
    """The import of an upload sent in slices, once every slice has arrived (the import page's
    last request); asked again, the same import. Raises UploadRefused while slices are
    missing, or when the upload is not the user's."""
    if job := CatalogImport.objects.filter(token=token, requested_by=user.pk).first():
        return job
    upload = upload_get(token=token, user=user)
    if missing := upload_missing(upload):
        described = ", ".join(
            f"{len(gaps)} of {upload.files[field]['name']} (the first: slice {gaps[0]})"
            for field, gaps in missing.items()
        )
        raise UploadRefused(f"Slices have not arrived: {described}. Send them, then finish.")
    try:
        return import_job_create(user=user, upload=upload, check_small_now=True)
    except IntegrityError:  # finished twice at once: the token is the other request's import
        return CatalogImport.objects.get(token=upload.token)


def import_job_confirm(*, job: CatalogImport, send: bool = True) -> bool:
    """Queue the write of a checked import; False when it is not waiting for a confirmation
    (confirmed already, cancelled, expired).

    Idempotent under concurrency: one conditional UPDATE moves the import from checked to
    confirmed, so of several confirmations at once exactly one moves it (and sends its one
    message) and the others get False. With `send` off nothing is sent: the caller writes it
    in its own process (the shell's import)."""
    with transaction.atomic():
        moved = CatalogImport.objects.filter(pk=job.pk, state=State.CHECKED).update(
            state=State.CONFIRMED, claimed_by="", heartbeat_at=timezone.now()
        )
        if moved and send:
            enqueue_after_commit(_run_import(), job.pk)
    return bool(moved)


def import_job_cancel(*, job: CatalogImport) -> bool:
    """Stop an import: one waiting is cancelled at once, one running stops after its current
    chunk (what it wrote stays). False when it has finished already."""
    now = timezone.now()
    waiting = CatalogImport.objects.filter(
        pk=job.pk, state__in=(State.QUEUED, State.CHECKED, State.CONFIRMED)
    ).update(
        state=State.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        note="Cancelled; nothing written.",
    )
    if waiting:
        _discard_files(job)
        return True
    return bool(
        CatalogImport.objects.filter(pk=job.pk, state__in=CatalogImport.RUNNING).update(
            cancel_requested=True
        )
    )


# --- the shell's import (manage.py import_catalog) ---------------------------------------


def import_job_in_shell(
    *,
    csv_file: File,
    images: DirectoryImages | ZipImages | None,
    kind: str = "",
    checked: Callable[[int], None] = lambda rows: None,
    written: Callable[[int], None] = lambda rows: None,
) -> tuple[CatalogImport, ImportResult]:
    """The admin's import job, run in the shell's own process: `manage.py import_catalog`.

    The CSV is staged as an upload is, and the import is listed in *Products → Imports*. The
    check reads the photos from the folder or ZIP given; a clean file is confirmed and written
    here at once, a chunk of rows per transaction with its checkpoint, so other writes never
    wait for the whole file. If the shell dies in the middle of the write, the import stays
    "writing" with every row up to its checkpoint written: a worker resumes it (the sweeper
    sends it again) or `import_catalog --resume <id>` does. `checked` and `written` hear the
    rows as they are checked and committed. Returns the import and the check's result.
    """
    staged = staging_create(csv_file=csv_file)
    with transaction.atomic():
        job = CatalogImport.objects.create(
            token=staged.token,
            csv_name=staged.csv_name[:255],
            has_images=images is not None,
            requested_kind=kind or "",
        )
    worker = shell_worker()
    job = _claim(job.pk, worker)
    result = _check_rows(job, staged.csv_data(), images, checked)
    job.refresh_from_db()
    if job.state == State.CHECKED and import_job_confirm(job=job, send=False):
        import_job_run(job_id=job.pk, worker=worker, progress=written)
        job.refresh_from_db()
    return job, result


def shell_worker() -> str:
    return f"shell:{worker_name()}"


def import_job_interrupted(*, worker: str) -> CatalogImport | None:
    """The shell's import, after Ctrl-C: one stopped before its write is cancelled (nothing was
    written); one stopped in its write stays writing, for `--resume` or a worker."""
    job = CatalogImport.objects.filter(claimed_by=worker).order_by("-pk").first()
    if job is None:
        return None
    if job.state in (State.QUEUED, State.CHECKING, State.CHECKED, State.CONFIRMED):
        _finish(job, State.CANCELLED, "Stopped in the shell before its write; nothing written.")
    else:  # the lease is the shell's no more: --resume may go on at once
        CatalogImport.objects.filter(pk=job.pk).update(claimed_by="", heartbeat_at=None)
    job.refresh_from_db()
    return job


# --- the worker's side -----------------------------------------------------------------


def import_job_run(
    *, job_id: int, worker: str, progress: Callable[[int], None] = lambda rows: None
) -> None:
    """Do what the import waits for: its check, or its write (resumed after the last chunk
    that committed). Duplicate and late messages are no-ops; raises ImportBusy while another
    worker holds the lease. `progress` hears how many rows each committed chunk wrote."""
    job = _claim(job_id, worker)
    if job is None:
        return
    try:
        if job.state in (State.QUEUED, State.CHECKING):
            _check(job, worker)
        else:
            _write(job, worker, progress)
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        CatalogImport.objects.filter(pk=job_id).update(note=f"{type(exc).__name__}: {exc}")
        raise  # delivered again; after MAX_ATTEMPTS claims it fails for good


def _claim(job_id: int, worker: str) -> CatalogImport | None:
    with transaction.atomic():
        job = CatalogImport.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in CatalogImport.RUNNING:
            return None
        now = timezone.now()
        lease = timedelta(seconds=LEASE_SECONDS)
        if job.claimed_by and job.claimed_by != worker and job.heartbeat_at:
            if now - job.heartbeat_at < lease:
                left = (job.heartbeat_at + lease - now).total_seconds()
                raise ImportBusy(
                    f"import {job_id} is being worked on by {job.claimed_by}", left + 1
                )
        job.attempts += 1
        job.claimed_by, job.heartbeat_at = worker, now
        job.save(update_fields=["claimed_by", "heartbeat_at", "attempts"])
    if job.attempts > MAX_ATTEMPTS:
        _finish(job, State.FAILED, f"Gave up after {MAX_ATTEMPTS} attempts. {job.note}".strip())
        return None
    return job


def _beat(job: CatalogImport, **fields) -> None:
    CatalogImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now(), **fields)


def _staged(job: CatalogImport) -> StagedImport:
    return StagedImport(job.token)


def _images(staged: StagedImport):
    """The staged ZIP as an image source (a context manager), or a null context."""
    handle = staged.open_zip()
    return handle if handle is not None else nullcontext()


def _check(job: CatalogImport, worker: str) -> None:
    staged = _staged(job)
    _beat(job, state=State.CHECKING)
    try:  # the check's first step: an upload sent in slices becomes its files
        upload_assemble(staged, beat=lambda: _beat(job))
    except UploadRefused as exc:
        refused = ImportResult(kind=None, dry_run=True, errors=[RowError(0, exc.column, str(exc))])
        _checked(job, refused, photos=0)
        return
    try:
        with _images(staged) as handle:
            if job.has_images and handle is None:  # a shell's import: its photos were a folder
                raise ImageSourceError(
                    "the shell that started this import stopped while it was checked, and its "
                    "photos are not in the storage: run manage.py import_catalog again"
                )
            _check_rows(job, staged.csv_data(), ZipImages(handle) if job.has_images else None)
    except ImageSourceError as exc:
        refused = ImportResult(kind=None, dry_run=True, errors=[RowError(0, "images", str(exc))])
        _checked(job, refused, photos=0)


def _check_rows(
    job: CatalogImport,
    csv_data: bytes,
    images: ZipImages | DirectoryImages | None,
    progress: Callable[[int], None] = lambda rows: None,
) -> ImportResult:
    """The check proper (the import's dry run, its photos stored and embedded), with the
    import's progress recorded as it goes and its outcome kept."""
    job.state, job.total_rows = State.CHECKING, count_data_rows(csv_data)
    job.phase_started_at = timezone.now()
    _beat(
        job,
        state=State.CHECKING,
        total_rows=job.total_rows,
        rows_checked=0,
        phase_started_at=job.phase_started_at,
    )
    seen = {"at": time.monotonic(), "photos": 0}

    def watch(rows: int, photos: int, errors: int) -> None:
        seen["photos"] = photos
        if time.monotonic() - seen["at"] >= PROGRESS_EVERY:
            seen["at"] = time.monotonic()
            _beat(job, rows_checked=rows, photos=photos, errors=errors)

    result = catalog_import(
        csv_data=csv_data,
        images=images,
        kind=job.requested_kind or None,
        dry_run=True,
        keep_photos=True,  # stored and embedded now: the write reads no photo again
        watch=watch,
        progress=progress,
    )
    _checked(job, result, photos=seen["photos"])
    return result


def _checked(job: CatalogImport, result: ImportResult, *, photos: int) -> None:
    """Keep what the check found and move the import on: ready to confirm, or refused."""
    if result.photos is not None:
        _keep_photos(job, result.photos)
    _keep_errors(job, result.errors)
    _keep_preview(job, result)
    fields = {
        "kind": result.kind or "",
        "rows_checked": len(result.rows) + result.failed,
        "photos": photos,
        "errors": result.error_count,
        "failed": result.failed,
        "to_create": result.created,
        "to_update": result.updated,
        "to_leave": result.unchanged,
    }
    if CatalogImport.objects.filter(pk=job.pk, cancel_requested=True).exists():
        _finish(job, State.CANCELLED, "Cancelled while it was checked; nothing written.", **fields)
    elif result.ok:
        _beat(job, state=State.CHECKED, claimed_by="", **fields)
        job.refresh_from_db()
        _notify(job, "is ready to confirm", f"{result.summary()}.")
    else:
        _finish(job, State.REFUSED, f"{result.error_count} errors: nothing imported.", **fields)


def _write(job: CatalogImport, worker: str, progress: Callable[[int], None]) -> None:
    if job.state == State.CONFIRMED:
        job.state, job.phase_started_at = State.WRITING, timezone.now()
        _beat(job, state=State.WRITING, phase_started_at=job.phase_started_at)
    staged = _staged(job)

    def on_chunk(chunk: ChunkWritten) -> None:  # inside the chunk's transaction
        counts = {action: 0 for action in ImportAction}
        for plan in chunk.plans:
            counts[plan.action] += 1
        _beat(
            job,
            written_through_line=chunk.through_line,
            rows_written=F("rows_written") + len(chunk.plans),
            created=F("created") + counts[ImportAction.CREATE],
            updated=F("updated") + counts[ImportAction.UPDATE],
            unchanged=F("unchanged") + counts[ImportAction.UNCHANGED],
        )
        transaction.on_commit(lambda: progress(len(chunk.plans)))

    def stop() -> bool:
        return CatalogImport.objects.filter(pk=job.pk, cancel_requested=True).exists()

    try:
        errors = catalog_import_in_chunks(
            csv_data=staged.csv_data(),
            photos=_known_photos(job) if job.has_images else None,
            kind=job.kind or job.requested_kind or None,
            after_line=job.written_through_line,
            on_chunk=on_chunk,
            stop=stop,
        )
    except WriteStopped:
        job.refresh_from_db()
        _sync_written(job)
        _finish(
            job,
            State.CANCELLED,
            f"Cancelled after line {job.written_through_line}: "
            f"the {job.rows_written} rows written before it stay.",
        )
        return
    job.refresh_from_db()
    _sync_written(job)
    if errors:
        _keep_errors(job, errors)
        _finish(
            job,
            State.FAILED,
            f"The catalog changed since the preview: {errors[0]}. The {job.rows_written} rows "
            f"up to line {job.written_through_line} are written.",
            errors=len(errors),
            failed=len({error.line for error in errors}),
        )
        return
    _finish(job, State.DONE, "")


def _sync_written(job: CatalogImport) -> None:
    """Queue the index sync of what the write changed (bulk writes send no signals)."""
    with transaction.atomic():
        ids = list(
            Product.objects.filter(
                index_state=IndexState.PENDING, updated_at__gte=job.phase_started_at
            ).values_list("pk", flat=True)
        )
        if ids:
            refit = job.kind != ImportKind.SALES and refit_needed(changed=len(ids))
            products_schedule_sync(product_ids=ids, refit=refit)


def _finish(job: CatalogImport, state: str, note: str, **fields) -> None:
    _beat(job, state=state, note=note, finished_at=timezone.now(), claimed_by="", **fields)
    job.refresh_from_db()
    _discard_files(job)
    import_finished.send(CatalogImport, job=job)
    verb = {
        State.DONE: "is imported",
        State.FAILED: "failed",
        State.REFUSED: "was refused",
        State.CANCELLED: "was cancelled",
    }[state]
    _notify(job, verb, note or job_summary(job))


def _discard_files(job: CatalogImport) -> None:
    """The uploaded files, and the photos the check stored that no product uses."""
    staging_discard(_staged(job))
    if job.state == State.DONE:
        return
    for sha, extension, width, height, image_new, thumbnail_new in _read_json(job, "created.json"):
        if Product.objects.filter(image_sha256=sha).exists():
            continue
        ref = ImageRef(sha, extension, width, height)
        for name, new in ((ref.storage_name, image_new), (ref.thumbnail_name, thumbnail_new)):
            if new:
                default_storage.delete(name)


def _keep_photos(job: CatalogImport, photos) -> None:
    """What the check stored: each photo's ref by path (for the write), and which files it
    created (removed again if the import never writes the rows that use them)."""
    refs = {path: [r.sha256, r.extension, r.width, r.height] for path, r in photos.refs().items()}
    created = [
        [r.sha256, r.extension, r.width, r.height, image, thumbnail]
        for r, image, thumbnail in photos.created
    ]
    _write_json(job, "photos.json", refs)
    _write_json(job, "created.json", created)


def _known_photos(job: CatalogImport) -> KnownPhotos:
    return KnownPhotos(
        {path: ImageRef(*ref) for path, ref in _read_json(job, "photos.json").items()}
    )


def _write_json(job: CatalogImport, name: str, value) -> None:
    name = report_name(job, name)
    default_storage.delete(name)
    default_storage.save(name, ContentFile(json.dumps(value).encode()))


def _read_json(job: CatalogImport, name: str, default=None):
    name = report_name(job, name)
    if not default_storage.exists(name):
        return [] if default is None else default
    with default_storage.open(name, "rb") as handle:
        return json.loads(handle.read())


def job_summary(job: CatalogImport) -> str:
    if job.state in (State.QUEUED, State.CHECKING, State.CHECKED, State.REFUSED):
        return (
            f"{job.to_create} to create, {job.to_update} to update, {job.to_leave} unchanged, "
            f"{job.failed} failed"
        )
    return (
        f"{job.created} created, {job.updated} updated, {job.unchanged} unchanged, "
        f"{job.failed} failed"
    )


# --- what the page shows ----------------------------------------------------------------


def _keep_errors(job: CatalogImport, errors: list[RowError]) -> None:
    """The error report, downloadable as CSV (line, column, reason)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["line", "column", "reason"])
    for error in errors:
        writer.writerow([error.line or "", error.column, _spreadsheet_safe(error.message)])
    name = report_name(job, "errors.csv")
    default_storage.delete(name)
    default_storage.save(name, ContentFile(buffer.getvalue().encode()))


def _spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _keep_preview(job: CatalogImport, result: ImportResult) -> None:
    shown = [row for row in result.rows if row.action != ImportAction.UNCHANGED][:PREVIEW_ROWS]
    # The photos a clean check stored, by content: each shown row's photo file and thumbnail,
    # so whoever confirms sees which photo goes with which row. A refused check stored none.
    paths = {}
    if result.photos is not None:
        for path, ref in result.photos.refs().items():
            paths.setdefault(ref.sha256, path)
    preview = {
        "rows": [
            {
                "line": row.line,
                "sku": row.sku,
                "name": row.name,
                "action": ImportAction(row.action).label,
                "changes": [str(change) for change in row.changes],
                "bestseller": row.bestseller,
                **_row_photo(row.photo, paths),
            }
            for row in shown
        ],
        "errors": [
            {"line": error.line, "column": error.column, "message": error.message}
            for error in result.errors[:PREVIEW_ERRORS]
        ],
    }
    _write_json(job, "preview.json", preview)


def _row_photo(photo: ImageRef | None, paths: dict[str, str]) -> dict:
    if photo is None or photo.sha256 not in paths:
        return {}
    return {"photo": paths[photo.sha256], "thumbnail": photo.thumbnail_name}


def job_preview(job: CatalogImport) -> dict:
    return _read_json(job, "preview.json", {"rows": [], "errors": []})


def job_progress(job: CatalogImport) -> dict:
    """The figures the import's page polls: rows done of the total, photos, errors, time left."""
    writing = job.state in (State.CONFIRMED, State.WRITING, State.DONE)
    done = job.rows_written if writing else job.rows_checked
    total = max(job.total_rows, done)
    left = None
    if job.is_running and job.phase_started_at and done:
        elapsed = (timezone.now() - job.phase_started_at).total_seconds()
        left = round(elapsed / done * (total - done))
    return {
        "state": job.state,
        "state_label": job.get_state_display(),
        "phase": "written" if writing else "checked",
        "done": done,
        "total": total,
        "photos": job.photos,
        "errors": job.errors,
        "seconds_left": left,
        "running": job.is_running,
        "summary": job_summary(job),
        "note": job.note,
    }


def imports_running() -> list[CatalogImport]:
    return list(CatalogImport.objects.filter(state__in=CatalogImport.RUNNING))


# --- sweeping ---------------------------------------------------------------------------


def imports_requeue_stalled() -> int:
    """Send again every running import whose worker has shown no sign of life for two leases
    (a lost message, a worker killed while Redis was away); fail one that keeps dying."""
    stale = timezone.now() - timedelta(seconds=2 * LEASE_SECONDS)
    stalled = CatalogImport.objects.filter(state__in=CatalogImport.RUNNING).filter(
        heartbeat_at__lt=stale
    ) | CatalogImport.objects.filter(
        state__in=CatalogImport.RUNNING, heartbeat_at__isnull=True, created_at__lt=stale
    )
    count = 0
    for job in stalled:
        enqueue_after_commit(_run_import(), job.pk)
        count += 1
    return count


def imports_expire_unconfirmed() -> int:
    """Checked imports nobody confirmed within a day are dropped with their files."""
    cutoff = timezone.now() - MAX_AGE
    expired = 0
    for job in CatalogImport.objects.filter(state=State.CHECKED, heartbeat_at__lt=cutoff):
        if CatalogImport.objects.filter(pk=job.pk, state=State.CHECKED).update(
            state=State.CANCELLED,
            finished_at=timezone.now(),
            note="Not confirmed within a day: upload the files again.",
        ):
            _discard_files(job)
            expired += 1
    return expired


def _notify(job: CatalogImport, verb: str, detail: str) -> None:
    """Mail the requester when a long import reaches a point they wait for."""
    user = job.requested_by
    started = job.phase_started_at or job.created_at
    long = (timezone.now() - started).total_seconds() >= settings.CATALOG_IMPORT_NOTIFY_SECONDS
    if user is None or not user.email or not long:
        return
    link = f"{settings.SITE_URL}/admin/catalog/catalogimport/{job.pk}/change/"
    send_mail(
        subject=f"Import {job.pk} ({job.csv_name}) {verb}",
        message=f"Import {job.pk} of {job.csv_name} {verb}.\n\n{detail}\n\n{link}\n",
        from_email=None,
        recipient_list=[user.email],
        fail_silently=True,
    )
