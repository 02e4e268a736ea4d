"""Products sent to the API (one, or up to a thousand at once) cleaned and written as CSV rows
are: each item becomes a row of a format with the item's own fields, cleaned by the import's
`clean_row` and written by its `rows_upsert`, so the API and the CSV import accept the same
values and say the same thing about a bad one. An error names the item's index, the field
and the reason; the items without errors are written, each whole or not at all.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from catalog.images import image_prepare
from catalog.importer.cleaning import CleanRow, clean_row
from catalog.importer.formats import TEXT_FIELDS, CsvFormat, ImportKind, RowError
from catalog.importer.results import ImportAction
from catalog.importer.service import rows_upsert
from catalog.importer.sources import ImageSourceError, Photos
from catalog.indexing import refit_needed
from catalog.models import Product
from catalog.services import products_schedule_sync

# An item's fields that are cleaned as the CSV column of the same name.
CELL_FIELDS = (*TEXT_FIELDS, "price", "sales_count")
# The CSV's column names as the API calls them.
FIELD_NAMES = {"image_path": "image"}


@dataclass(frozen=True)
class ItemError:
    index: int  # the item's position in the request, from 0
    field: str
    reason: str


@dataclass
class ItemsResult:
    """What a write did: each written item's action by index, and every error."""

    actions: dict[int, tuple[str, ImportAction]] = field(default_factory=dict)
    errors: list[ItemError] = field(default_factory=list)

    def count(self, action: ImportAction) -> int:
        return sum(1 for _, done in self.actions.values() if done == action)


class ItemsConflict(Exception):
    """Another write created one of the SKUs between this call's check and its write."""


class _ItemPhoto:
    """One item's photo, decoded from URL-safe base64: an image source for the import's
    Photos, which checks, re-encodes and stores it as it does a CSV row's."""

    def __init__(self, data: bytes):
        self.data = data

    def describe(self) -> str:
        return "the request"

    def read(self, relative: PurePosixPath) -> bytes:
        limit = settings.CATALOG_IMAGE_MAX_BYTES
        if len(self.data) > limit:
            raise ImageSourceError(f"is {len(self.data):,} bytes; the limit is {limit:,} bytes")
        return self.data


# Photos uploaded first (POST /api/v1/uploads), kept per owner until an item names them. The
# folder is not among the media URLs' folders, so nobody reads them over HTTP.
UPLOADS = "api-uploads"
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def upload_store(*, data: bytes, owner) -> str:
    """Keep a photo for a later item and return its id; ImageRejected when it is not a photo
    the import would take (checked now, so the upload is told, not the item)."""
    image_prepare(data)
    upload_id = secrets.token_urlsafe(16)
    default_storage.save(f"{UPLOADS}/{owner.pk}/{upload_id}", ContentFile(data))
    return upload_id


def _upload_read(upload_id: str, owner) -> bytes:
    name = f"{UPLOADS}/{owner.pk}/{upload_id}"
    if not _UPLOAD_ID.match(upload_id) or not default_storage.exists(name):
        raise ValueError(
            f"no upload {upload_id!r} by this token's owner; send the photo to "
            "POST /api/v1/uploads first"
        )
    with default_storage.open(name) as file:
        return file.read()


def _decoded(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("is not URL-safe base64") from None


def _cell(value: object) -> str:
    """A JSON value as the CSV cell it stands for."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean")
    return str(value)


def _clean_item(
    index: int, item: dict, kind: ImportKind, exists: bool, owner, errors: list[RowError]
) -> tuple[CsvFormat, CleanRow, Photos | None] | None:
    """The item as a cleaned row of a format made of its fields (None when it has errors)."""
    record, item_errors = {"sku": _cell(item.get("sku"))}, []
    for name in CELL_FIELDS:
        if name in item:
            try:
                record[name] = _cell(item[name])
            except ValueError as exc:
                item_errors.append(RowError(index, name, str(exc)))
    if not exists and "category" not in record and kind != ImportKind.SALES:
        record["category"] = ""  # a new product needs one: the import's "is empty"
    photos = None
    for name, read in (("image", _decoded), ("image_upload", lambda i: _upload_read(i, owner))):
        if item.get(name):
            try:
                photos = Photos(_ItemPhoto(read(str(item[name]))), store=True)
                record["image_path"] = f"items[{index}].{name}"
            except ValueError as exc:
                item_errors.append(RowError(index, name, str(exc)))
            break
    else:
        if not exists and kind != ImportKind.SALES:
            item_errors.append(RowError(index, "image", "is empty; a new product needs a photo"))
    columns = tuple(name for name in record if name != "sku")
    fmt = CsvFormat(kind, ("sku", *columns), "sku")
    row = clean_row(fmt, index, record, photos, item_errors)
    errors += item_errors
    if item_errors:
        if photos is not None:
            photos.discard()
        return None
    return fmt, row, photos


def _kind(item: dict, lifecycle: str | None, index: int, errors: list[RowError]):
    """The import format whose lifecycle rule the item follows: the one it asks for, else its
    product's own (an update leaves a historical listing historical), else a new product."""
    wanted = item.get("lifecycle")
    if wanted in (None, ""):
        return ImportKind.HISTORICAL if lifecycle == "historical" else ImportKind.NEW
    if wanted not in (ImportKind.HISTORICAL, ImportKind.NEW):
        errors.append(RowError(index, "lifecycle", f"{wanted!r} is not 'historical' or 'new'"))
        return None
    return ImportKind(wanted)


def products_write(*, items: list[dict], sales_only: bool, user, token_name: str) -> ItemsResult:
    """Create or update products by SKU, or with `sales_only` update the sales counts of
    existing products (the import's sales format). Every write is in the admin log as `user`,
    "via API token <name>"; the index sync is queued after the commit, as the import's is."""
    errors: list[RowError] = []
    skus = [str(item.get("sku") or "").strip() for item in items]
    lifecycles = dict(Product.objects.filter(sku__in=skus).values_list("sku", "lifecycle"))
    first_index: dict[str, int] = {}
    groups: dict[tuple, tuple[CsvFormat, list[tuple[CleanRow, Photos | None]]]] = {}
    for index, (item, sku) in enumerate(zip(items, skus, strict=True)):
        if sku and sku in first_index:
            errors.append(
                RowError(index, "sku", f"sku {sku!r} already appears on item {first_index[sku]}")
            )
            continue
        first_index.setdefault(sku, index)
        kind = ImportKind.SALES if sales_only else _kind(item, lifecycles.get(sku), index, errors)
        if kind is None:
            continue
        cleaned = _clean_item(index, item, kind, sku in lifecycles, user, errors)
        if cleaned is not None:
            fmt, row, photos = cleaned
            groups.setdefault((kind, fmt.columns), (fmt, []))[1].append((row, photos))
    result = ItemsResult()
    try:
        with transaction.atomic():
            for fmt, rows in groups.values():
                plans, _ = rows_upsert(fmt=fmt, rows=[row for row, _ in rows], errors=errors)
                for plan in plans:
                    result.actions[plan.line] = (plan.sku, plan.action)
            _log_and_sync(result, sales_only=sales_only, user=user, token_name=token_name)
    except IntegrityError as exc:
        for _, rows in groups.values():
            for _, photos in rows:
                if photos is not None:
                    photos.discard()
        raise ItemsConflict(str(exc)) from None
    # A row the plan refused (a sales update of an unknown sku) keeps no photo it stored.
    for _, rows in groups.values():
        for row, photos in rows:
            if photos is not None and row.line not in result.actions:
                photos.discard()
    result.errors = sorted(
        (ItemError(e.line, FIELD_NAMES.get(e.column, e.column), e.message) for e in errors),
        key=lambda error: error.index,
    )
    return result


def _log_and_sync(result: ItemsResult, *, sales_only: bool, user, token_name: str) -> None:
    """The admin log entries of the written products, and their index sync after commit."""
    ids = []
    for action, flag in ((ImportAction.CREATE, ADDITION), (ImportAction.UPDATE, CHANGE)):
        skus = [sku for sku, done in result.actions.values() if done == action]
        if not skus:
            continue
        written = Product.objects.filter(sku__in=skus)
        LogEntry.objects.log_actions(
            user.pk, written, flag, change_message=f"via API token “{token_name}”"
        )
        ids += written.values_list("pk", flat=True)
    if ids:
        products_schedule_sync(
            product_ids=ids, refit=not sales_only and refit_needed(changed=len(ids))
        )
