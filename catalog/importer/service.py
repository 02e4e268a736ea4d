"""CSV import of the catalog: one service behind both the admin page and `import_catalog`.

The import runs in stages, like django-import-export: parse every row and clean every cell,
collecting errors that name the line, the column and the reason, and plan what each row does
to the database (create, update, unchanged); then, unless it is a dry run or anything failed,
read the file again and write the plan in one transaction, a chunk of rows at a time. A file
with any error writes nothing.

Memory stays flat in the number of rows: rows are planned and written in chunks, each photo is
stored as soon as it is checked, and what is kept per row is its plan (for the preview). Each
photo is read and decoded once; with a local embedder its vector is computed from that decode
on every core while the import goes on (catalog.photo_stream), so the index sync queued
after the commit finds every vector cached.

Three formats, told apart by their header (see formats.FORMATS): the seed's historical catalog, the
seed's new products, and a sales update (sku, sales_count).
"""

from __future__ import annotations

import csv
import gc
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import transaction
from django.utils import timezone

from catalog.embedders import get_embedder
from catalog.events import products_written
from catalog.importer.cleaning import CleanRow, clean_row
from catalog.importer.formats import (
    CsvFormat,
    HeaderErrors,
    ImportAborted,
    ImportKind,
    RowError,
    decode_csv,
    detect_format,
)
from catalog.importer.results import Change, ImportAction, ImportResult, RowPlan
from catalog.importer.sources import DirectoryImages, KnownPhotos, Photos, ZipImages
from catalog.indexing import chunks, refit_needed
from catalog.models import Product, bestseller_threshold
from catalog.photo_stream import PhotoStream
from catalog.photo_work import LocalFiles
from catalog.services import product_use_image, products_schedule_sync

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines(text: str) -> Iterator[str]:
    """The text's lines with their endings, one at a time: csv.reader on io.StringIO would
    first copy the whole file at four bytes a character."""
    return (match.group() for match in _LINE.finditer(text))


def _header(text: str, kind: ImportKind | None):
    """The file's CSV reader (past the header), its header and its format."""
    reader = csv.reader(_lines(text), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        raise ImportAborted(
            RowError(reader.line_num, "", f"the header cannot be read as CSV ({exc})")
        ) from None
    return reader, header, detect_format(header, kind)


def file_errors(csv_data: bytes, kind: ImportKind | str | None) -> list[RowError]:
    """What refuses the file as a whole (too large, not UTF-8, empty, a header of no format),
    found without reading its rows."""
    try:
        _header(decode_csv(csv_data), ImportKind(kind) if kind else None)
    except ImportAborted as exc:
        return [exc.error]
    except HeaderErrors as exc:
        return exc.errors
    return []


def _cleaned_rows(
    text: str,
    kind: ImportKind | None,
    photos: Photos | None,
    errors: list[RowError],
    progress,
    skip_through: int = 0,
) -> tuple[CsvFormat, Iterator[CleanRow]]:
    """The file's format and an iterator over its cleaned rows; errors are appended as the
    rows go by (a row with an error is not yielded). Rows up to line `skip_through` are
    passed over unread (a resumed write: they are written already)."""
    reader, header, fmt = _header(text, kind)
    if fmt.kind != ImportKind.SALES and photos is None:
        raise ImportAborted(
            RowError(1, "image_path", "this format needs its images: give the images folder or ZIP")
        )

    def records() -> Iterator[tuple[int, list[str]]]:
        line = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                errors.append(RowError(line, "", f"this row cannot be read as CSV ({exc})"))
                return
            row_line, line = line, reader.line_num + 1
            yield row_line, fields

    def rows() -> Iterator[CleanRow]:
        first_line_of: dict[str, int] = {}
        found = False
        for row_line, fields in _read_ahead(records(), header, photos, skip_through):
            if not any(value.strip() for value in fields):
                continue  # blank lines are allowed, as spreadsheet exports often end with some
            found = True
            if len(fields) != len(header):
                errors.append(
                    RowError(
                        row_line,
                        "",
                        f"expected {len(header)} fields as in the header, found {len(fields)}",
                    )
                )
                continue
            record = dict(zip(header, fields, strict=True))
            if row_line <= skip_through:
                first_line_of.setdefault((record.get(fmt.sku_column) or "").strip(), row_line)
                continue
            cleaned = clean_row(fmt, row_line, record, photos, errors)
            sku = (record.get(fmt.sku_column) or "").strip()
            if sku:
                if sku in first_line_of:
                    errors.append(
                        RowError(
                            row_line,
                            fmt.sku_column,
                            f"sku {sku!r} already appears on line {first_line_of[sku]}",
                        )
                    )
                    cleaned = None
                else:
                    first_line_of[sku] = row_line
            progress(1)
            if cleaned is not None:
                yield cleaned
        if not found:
            errors.append(RowError(1, "", "the file has a header but no rows"))

    return fmt, rows()


def _read_ahead(
    records: Iterator[tuple[int, list[str]]],
    header: list[str],
    photos: Photos | KnownPhotos | None,
    skip_through: int,
) -> Iterator[tuple[int, list[str]]]:
    """The records as they come, with the photos of the next `photos.lookahead` rows announced
    before them (photos prepared on a pool: catalog.photo_stream)."""
    depth = photos.lookahead if photos is not None else 0
    if not depth or "image_path" not in header:
        yield from records
        return
    column, ahead = header.index("image_path"), deque()
    for line, fields in records:
        if line > skip_through and len(fields) == len(header):
            photos.expect(fields[column])
        ahead.append((line, fields))
        if len(ahead) > depth:
            yield ahead.popleft()
    yield from ahead


# --- planning and writing -----------------------------------------------------------------

PLAN_CHUNK = 500  # rows planned (one query) and written (one bulk query each) together


def _plan(
    fmt: CsvFormat, rows: list[CleanRow], errors: list[RowError]
) -> list[tuple[RowPlan, Product]]:
    existing = Product.objects.in_bulk([row.sku for row in rows], field_name="sku")
    plans = []
    for row in rows:
        product = existing.get(row.sku)
        if product is None and fmt.kind == ImportKind.SALES:
            errors.append(
                RowError(
                    row.line,
                    "sku",
                    f"no product with sku {row.sku!r}; import it with the catalog format first",
                )
            )
            continue
        wanted = dict(row.values)
        if fmt.kind != ImportKind.SALES:
            wanted["lifecycle"] = (
                Product.Lifecycle.HISTORICAL
                if fmt.kind == ImportKind.HISTORICAL
                else Product.Lifecycle.NEW
            )
            if (
                fmt.kind == ImportKind.NEW
                and product is not None
                and product.lifecycle == Product.Lifecycle.PUBLISHED
            ):
                wanted["lifecycle"] = product.lifecycle  # imported again: its images stay published
        bestseller = ""
        if product is None:
            product = Product(sku=row.sku)
            action = ImportAction.CREATE
            changes = ()
        else:
            changes = [
                Change(name, getattr(product, name), value)
                for name, value in wanted.items()
                if getattr(product, name) != value
            ]
            if row.image and product.image_sha256 != row.image.sha256:
                changes.append(Change("image", product.image_sha256[:12], row.image.sha256[:12]))
            action = ImportAction.UPDATE if changes else ImportAction.UNCHANGED
            if "sales_count" in wanted:
                was, will = product.is_bestseller, wanted["sales_count"] > bestseller_threshold()
                bestseller = (
                    "becomes a bestseller"
                    if will and not was
                    else "no longer a bestseller"
                    if was and not will
                    else ""
                )
        for name, value in wanted.items():
            setattr(product, name, value)
        if row.image and (
            action == ImportAction.CREATE or any(c.field == "image" for c in changes)
        ):
            product_use_image(product=product, image=row.image)
        plan = RowPlan(row.line, row.sku, action, changes, bestseller, product.name, row.image)
        plans.append((plan, product))
    return plans


def _write_chunk(fmt: CsvFormat, plans: list[tuple[RowPlan, Product]], now) -> list[int]:
    """Write one chunk's changed rows (inside the import's transaction); returns their ids."""
    to_create, to_update, fields = [], [], {"updated_at", "index_state"}
    for plan, product in plans:
        if plan.action == ImportAction.UNCHANGED:
            continue
        product.updated_at = now  # bulk_update skips auto_now
        product.mark_index_pending()  # bulk writes skip Product.save()
        if "sales_count" in fmt.columns and (
            plan.action == ImportAction.CREATE or "sales_count" in plan.changed_fields
        ):
            product.sales_updated_at = now
            fields.add("sales_updated_at")
        (to_create if plan.action == ImportAction.CREATE else to_update).append(product)
        fields.update(plan.changed_fields)
    if "image" in fields:
        fields |= {"thumbnail", "image_sha256", "image_width", "image_height"}
    Product.objects.bulk_create(to_create, batch_size=PLAN_CHUNK)
    if to_update:
        Product.objects.bulk_update(to_update, sorted(fields), batch_size=PLAN_CHUNK)
    products_written.send(Product, created=to_create, updated=to_update)  # bulk: no post_save
    if any(product.pk is None for product in to_create):  # a database that returns no ids
        return list(
            Product.objects.filter(sku__in=[p.sku for p in to_create + to_update]).values_list(
                "pk", flat=True
            )
        )
    return [product.pk for product in to_create + to_update]


def rows_upsert(
    *, fmt: CsvFormat, rows: list[CleanRow], errors: list[RowError]
) -> tuple[list[RowPlan], list[int]]:
    """Plan and write cleaned rows as the import does, inside the caller's transaction: the
    plans of the rows that planned well (the others' errors appended) and the changed ids.
    The API's product writes (catalog.importer.items) go through here."""
    plans = _plan(fmt, rows, errors)
    return [plan for plan, _ in plans], _write_chunk(fmt, plans, timezone.now())


class _CatalogChanged(Exception):
    """A row that planned well no longer does (another import or an edit came in between)."""


def _write(text: str, fmt: CsvFormat, photos: Photos | None, *, sync_index: bool) -> list[RowPlan]:
    """Read the checked file again and write it in one transaction, a chunk at a time (the
    photos were stored as they were checked). Returns the plan of what was written."""
    now, written, errors = timezone.now(), [], []
    with transaction.atomic():
        _, rows = _cleaned_rows(text, fmt.kind, photos, errors, lambda n: None)
        changed_ids: list[int] = []
        for chunk in chunks(rows, PLAN_CHUNK):
            plans = _plan(fmt, chunk, errors)
            if errors:
                raise _CatalogChanged(errors)
            changed_ids += _write_chunk(fmt, plans, now)
            written += [plan for plan, _ in plans]
            # A saved model and its FileFields point at each other: free each chunk's now,
            # or they pile up until the next full collection and memory grows with the rows.
            del plans
            gc.collect()
        if errors:
            raise _CatalogChanged(errors)
        # Bulk writes send no signals: queue the index sync here, sent after commit.
        if changed_ids and sync_index:
            products_schedule_sync(
                product_ids=changed_ids,
                refit=fmt.kind != ImportKind.SALES and refit_needed(changed=len(changed_ids)),
            )
    return written


def _photo_stream(*, rows: int, embed: bool, store: bool) -> PhotoStream:
    """Where an import's photos are prepared: on a pool from CATALOG_IMPORT_POOL_MIN_ROWS rows
    (which stores their files too when they go to local storage), and embedded as they are
    when `embed` and the embedder is a local one."""
    embedder = get_embedder()
    pool = rows >= settings.CATALOG_IMPORT_POOL_MIN_ROWS
    return PhotoStream(
        embedder if embed and embedder.stream_side else None,
        processes=settings.CATALOG_IMPORT_PROCESSES if pool else 1,
        files=local_files() if store else None,
    )


def local_files() -> LocalFiles | None:
    """The default storage as a pool process can write to it, when it is the local one."""
    storage = storages["default"]
    if type(storage) is not FileSystemStorage:
        return None  # S3 and the like: the import's process stores through Django
    return LocalFiles(
        str(storage.location), storage.file_permissions_mode, storage.directory_permissions_mode
    )


def catalog_import(
    *,
    csv_data: bytes,
    images: DirectoryImages | ZipImages | None,
    kind: ImportKind | str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda n: None,
    sync_index: bool = True,
    watch: Callable[[int, int, int], None] | None = None,
    keep_photos: bool = False,
) -> ImportResult:
    """Import a catalog CSV: upsert by sku, all rows or none.

    Without `dry_run` the write is one transaction: for small files written from code (the
    demo's sample catalog, tests). An import a person starts (the admin's page, `manage.py
    import_catalog`) is a job (catalog.importer.jobs): this dry run, then
    `catalog_import_in_chunks`, so other writes never wait for the whole file.

    With sync_index off, changed products stay pending for the periodic sync instead of
    being queued (for imports made before the task broker runs).

    `watch(rows, photos, errors)` hears how far the check has come, after every row.

    With `keep_photos` a dry run of a clean file stores and embeds its photos as a write
    would, and leaves them in `result.photos` (their refs, and which files it created), so the
    write that follows (`catalog_import_in_chunks`) reads no photo again.

    Returns the result with a plan per row and every error found. On a dry run, or when any
    row has an error, nothing is written. Hooks that react to the write belong in
    `transaction.on_commit`, so a rolled back import triggers nothing.
    """
    kind = ImportKind(kind) if kind else None
    result = ImportResult(kind=kind, dry_run=dry_run)
    photos: Photos | None = None
    try:
        text = decode_csv(csv_data)
        keep = dry_run and keep_photos
        rows_count = count_data_rows(csv_data)
        stream = (
            _photo_stream(rows=rows_count, embed=not dry_run or keep, store=not dry_run or keep)
            if images is not None
            else nullcontext()
        )
        with stream:
            if images is not None:
                photos = Photos(images, store=not dry_run or keep, stream=stream)
            seen = [0]

            def tick(n: int) -> None:
                progress(n)
                if watch is not None:
                    seen[0] += n
                    photos_seen = photos.seen if photos is not None else 0
                    watch(seen[0], photos_seen, result.error_count)

            fmt, rows = _cleaned_rows(text, kind, photos, result.errors, tick)
            result.kind = fmt.kind
            for chunk in chunks(rows, PLAN_CHUNK):
                result.rows += [plan for plan, _ in _plan(fmt, chunk, result.errors)]
            del rows  # and with it the first pass's index of skus
        result.errors.sort(key=lambda error: error.line)
        if not result.errors and not dry_run:
            result.rows = []  # the write pass plans again, with what it writes
            result.rows = _write(text, fmt, photos, sync_index=sync_index)
            result.applied = True
    except ImportAborted as exc:
        result.errors = [exc.error]
    except HeaderErrors as exc:
        result.errors = exc.errors
    except _CatalogChanged as exc:
        result.errors = sorted(exc.args[0], key=lambda error: error.line)
    finally:
        if photos is not None and keep_photos and dry_run and not result.errors:
            result.photos = photos
        elif photos is not None and not result.applied:
            photos.discard()  # nothing written: the photos this import stored go too
    return result


@dataclass
class ChunkWritten:
    """One committed chunk of a resumable write: its plans, up to which line, which products."""

    plans: list[RowPlan]
    through_line: int
    product_ids: list[int]


class WriteStopped(Exception):
    """A resumable write stopped between chunks because it was asked to (cancelled)."""


def catalog_import_in_chunks(
    *,
    csv_data: bytes,
    photos: KnownPhotos | None,
    kind: ImportKind | str | None,
    after_line: int,
    on_chunk: Callable[[ChunkWritten], None],
    stop: Callable[[], bool] = lambda: False,
) -> list[RowError]:
    """Write a file that a dry run found clean, one chunk of rows per transaction. Its photos
    were stored and embedded by that dry run (`keep_photos`): `photos` names them by path.

    `on_chunk` runs inside each chunk's transaction, so what it records (the line reached,
    the counts) commits with the rows or not at all: a write killed in the middle is resumed
    with `after_line` and writes every row exactly once. Between chunks, `stop()` can end it
    (WriteStopped); what was written stays. Returns the errors of a row that no longer plans
    well (the catalog changed since the dry run); the chunks before it stay written. The
    index sync is the caller's: the products are left pending.
    """
    kind = ImportKind(kind) if kind else None
    errors: list[RowError] = []
    text = decode_csv(csv_data)
    fmt, rows = _cleaned_rows(text, kind, photos, errors, lambda n: None, after_line)
    for chunk in chunks(rows, settings.CATALOG_IMPORT_CHUNK_ROWS):
        if errors:
            break
        if stop():
            raise WriteStopped()
        with transaction.atomic():
            plans = _plan(fmt, chunk, errors)
            if errors:
                break
            ids = _write_chunk(fmt, plans, timezone.now())
            on_chunk(ChunkWritten([plan for plan, _ in plans], chunk[-1].line, ids))
        del plans
        gc.collect()
        time.sleep(settings.CATALOG_IMPORT_CHUNK_PAUSE_MS / 1000)  # others' turn (SQLite)
    return sorted(errors, key=lambda error: error.line)


def count_data_rows(csv_data: bytes) -> int:
    """A cheap row count for progress bars (the header excluded)."""
    return max(csv_data.count(b"\n") - 1 + (not csv_data.endswith(b"\n")), 0)
