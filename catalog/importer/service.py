"""CSV import of the catalog: one service behind both the admin page and `import_catalog`.

The import runs in three stages, like django-import-export: parse every row and clean every
cell, collecting errors that name the line, the column and the reason; plan what each row does
to the database (create, update, unchanged); then, unless it is a dry run or anything failed,
write the whole plan in one transaction. A file with any error writes nothing.

Three formats, told apart by their header (see formats.FORMATS): the seed's historical catalog, the
seed's new products, and a sales update (sku, sales_count).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

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
from catalog.importer.sources import DirectoryImages, Photos, ZipImages
from catalog.indexing import refit_needed
from catalog.models import Product, bestseller_threshold
from catalog.services import product_use_image, products_schedule_sync


def _parse(text: str, kind: ImportKind | None, photos: Photos | None,
           progress) -> tuple[CsvFormat, list[CleanRow], list[RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
        fmt = detect_format(header, kind)
    except csv.Error as exc:
        raise ImportAborted(RowError(reader.line_num, "", f"the header cannot be read as CSV ({exc})")) from None
    if fmt.kind != ImportKind.SALES and photos is None:
        raise ImportAborted(RowError(1, "image_path", "this format needs its images: give the images folder or ZIP"))

    rows: list[CleanRow] = []
    errors: list[RowError] = []
    first_line_of: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(line, "", f"this row cannot be read as CSV ({exc})"))
            break
        row_line, line = line, reader.line_num + 1
        if not any(value.strip() for value in fields):
            continue  # blank lines are allowed, as spreadsheet exports often end with some
        if len(fields) != len(header):
            errors.append(RowError(row_line, "", f"expected {len(header)} fields as in the header, found {len(fields)}"))
            continue
        record = dict(zip(header, fields))
        cleaned = clean_row(fmt, row_line, record, photos, errors)
        sku = (record.get(fmt.sku_column) or "").strip()
        if sku:
            if sku in first_line_of:
                errors.append(RowError(row_line, fmt.sku_column,
                                       f"sku {sku!r} already appears on line {first_line_of[sku]}"))
                cleaned = None
            else:
                first_line_of[sku] = row_line
        if cleaned is not None:
            rows.append(cleaned)
        progress(1)
    if not rows and not errors:
        errors.append(RowError(1, "", "the file has a header but no rows"))
    return fmt, rows, errors


# --- planning and writing -----------------------------------------------------------------

def _plan(fmt: CsvFormat, rows: list[CleanRow], errors: list[RowError]) -> list[tuple[CleanRow, RowPlan, Product]]:
    existing = Product.objects.in_bulk([row.sku for row in rows], field_name="sku")
    plans = []
    for row in rows:
        product = existing.get(row.sku)
        if product is None and fmt.kind == ImportKind.SALES:
            errors.append(RowError(row.line, "sku", f"no product with sku {row.sku!r}; "
                                                    "import it with the catalog format first"))
            continue
        wanted = dict(row.values)
        if fmt.kind != ImportKind.SALES:
            wanted["lifecycle"] = (Product.Lifecycle.HISTORICAL if fmt.kind == ImportKind.HISTORICAL
                                   else Product.Lifecycle.NEW)
            if (fmt.kind == ImportKind.NEW and product is not None
                    and product.lifecycle == Product.Lifecycle.PUBLISHED):
                wanted["lifecycle"] = product.lifecycle  # imported again: its images stay published
        bestseller = ""
        if product is None:
            product = Product(sku=row.sku)
            action = ImportAction.CREATE
            changes = []
        else:
            changes = [Change(name, getattr(product, name), value) for name, value in wanted.items()
                       if getattr(product, name) != value]
            if row.image and product.image_sha256 != row.image.sha256:
                changes.append(Change("image", product.image_sha256[:12], row.image.sha256[:12]))
            action = ImportAction.UPDATE if changes else ImportAction.UNCHANGED
            if "sales_count" in wanted:
                was, will = product.is_bestseller, wanted["sales_count"] > bestseller_threshold()
                bestseller = ("becomes a bestseller" if will and not was
                              else "no longer a bestseller" if was and not will else "")
        for name, value in wanted.items():
            setattr(product, name, value)
        if row.image and (action == ImportAction.CREATE or any(c.field == "image" for c in changes)):
            product_use_image(product=product, image=row.image)
        plans.append((row, RowPlan(row.line, row.sku, action, changes, bestseller), product))
    return plans


def _write(fmt: CsvFormat, plans: list[tuple[CleanRow, RowPlan, Product]], *, sync_index: bool) -> None:
    """Write every row in one transaction (the photos were stored as they were read)."""
    now = timezone.now()
    to_create, to_update, fields = [], [], {"updated_at", "index_state"}
    for _, plan, product in plans:
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
    with transaction.atomic():
        Product.objects.bulk_create(to_create, batch_size=500)
        if to_update:
            Product.objects.bulk_update(to_update, sorted(fields), batch_size=500)
        # Bulk writes send no signals: queue the index sync here, sent after commit.
        changed_skus = [p.sku for p in to_create + to_update]
        if changed_skus and sync_index:
            products_schedule_sync(
                product_ids=list(Product.objects.filter(sku__in=changed_skus).values_list("pk", flat=True)),
                refit=fmt.kind != ImportKind.SALES and refit_needed(changed=len(changed_skus)),
            )


def catalog_import(
    *,
    csv_data: bytes,
    images: DirectoryImages | ZipImages | None,
    kind: ImportKind | str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda n: None,
    sync_index: bool = True,
) -> ImportResult:
    """Import a catalog CSV: upsert by sku, all rows or none.

    With sync_index off, changed products stay pending for the periodic sync instead of
    being queued (for imports made before the task broker runs).

    Returns the result with a plan per row and every error found. On a dry run, or when any
    row has an error, nothing is written. Hooks that react to the write belong in
    `transaction.on_commit`, so a rolled back import triggers nothing.
    """
    kind = ImportKind(kind) if kind else None
    result = ImportResult(kind=kind, dry_run=dry_run)
    photos = Photos(images, store=not dry_run) if images is not None else None
    try:
        fmt, rows, result.errors = _parse(decode_csv(csv_data), kind, photos, progress)
        result.kind = fmt.kind
        plans = _plan(fmt, rows, result.errors)
        result.rows = [plan for _, plan, _ in plans]
        result.errors.sort(key=lambda error: error.line)
        if not result.errors and not dry_run:
            _write(fmt, plans, sync_index=sync_index)
            result.applied = True
    except ImportAborted as exc:
        result.errors = [exc.error]
    except HeaderErrors as exc:
        result.errors = exc.errors
    finally:
        if photos is not None and not result.applied:
            photos.discard()  # nothing written: the photos this import stored go too
    return result


def count_data_rows(csv_data: bytes) -> int:
    """A cheap row count for progress bars (the header excluded)."""
    return max(csv_data.count(b"\n") - 1 + (not csv_data.endswith(b"\n")), 0)
