"""CSV import of the catalog: one service behind both the admin page and `import_catalog`.

The import runs in three stages, like django-import-export: parse every row and clean every
cell, collecting errors that name the line, the column and the reason; plan what each row does
to the database (create, update, unchanged); then, unless it is a dry run or anything failed,
write the whole plan in one transaction. A file with any error writes nothing.

Three formats, told apart by their header (see FORMATS): the seed's historical catalog, the
seed's new products, and a sales update (sku, sales_count).
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone

from catalog.images import ImageRejected, PreparedImage, image_prepare, image_store
from catalog.indexing import index_schedule_sync, refit_needed
from catalog.models import IndexState, Product, sku_validator


class ImportKind(models.TextChoices):
    HISTORICAL = "historical", "Historical catalog"
    NEW = "new", "New products"
    SALES = "sales", "Sales update"


@dataclass(frozen=True)
class CsvFormat:
    kind: ImportKind
    columns: tuple[str, ...]
    sku_column: str


FORMATS = {
    ImportKind.HISTORICAL: CsvFormat(
        ImportKind.HISTORICAL,
        ("product_id", "image_path", "category", "color", "style", "season", "sales_count",
         "description", "price"),
        "product_id",
    ),
    ImportKind.NEW: CsvFormat(
        ImportKind.NEW,
        ("new_id", "image_path", "category", "style", "season", "prompt_hint"),
        "new_id",
    ),
    ImportKind.SALES: CsvFormat(ImportKind.SALES, ("sku", "sales_count"), "sku"),
}

# CSV column -> Product field, for the columns that are copied as cleaned text.
TEXT_FIELDS = {
    "category": "category",
    "color": "color",
    "style": "style",
    "season": "season",
    "description": "description",
    "prompt_hint": "prompt_hint",
}
REQUIRED_TEXT = {"category"}


class ImportAction(models.TextChoices):
    CREATE = "create", "will be created"
    UPDATE = "update", "will be updated"
    UNCHANGED = "unchanged", "unchanged"


@dataclass(frozen=True)
class RowError:
    line: int  # 0 when the error concerns the file as a whole
    column: str
    message: str

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        where += [f"column {self.column!r}"] if self.column else []
        return f"{', '.join(where) or 'file'}: {self.message}"


@dataclass
class RowPlan:
    line: int
    sku: str
    action: ImportAction
    changes: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    kind: ImportKind | None
    dry_run: bool
    rows: list[RowPlan] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

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
        return len({error.line for error in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed_skus(self) -> list[str]:
        return [row.sku for row in self.rows if row.action != ImportAction.UNCHANGED]

    def summary(self) -> str:
        return (f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.failed} failed")


class ImportAborted(Exception):
    """A file-level problem: nothing after it can be read meaningfully."""

    def __init__(self, error: RowError):
        super().__init__(str(error))
        self.error = error


# --- where the images come from -----------------------------------------------------------

class ImageSourceError(Exception):
    pass


def safe_relative_path(raw: str) -> PurePosixPath:
    """The image path as written in the CSV, refused if it could leave the images folder."""
    text = raw.strip().replace("\\", "/")
    if not text:
        raise ImageSourceError("is empty")
    if "\x00" in text:
        raise ImageSourceError("contains a NUL character")
    path = PurePosixPath(text)
    if path.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise ImageSourceError(f"{raw!r} is an absolute path; give a path relative to the images")
    if ".." in path.parts:
        raise ImageSourceError(f"{raw!r} leaves the images folder ('..' is not allowed)")
    return path


class DirectoryImages:
    """Images in a folder on disk (the management command)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ImageSourceError(f"images folder {str(root)!r} does not exist")

    def describe(self) -> str:
        return f"the images folder {str(self.root)!r}"

    def read(self, relative: PurePosixPath) -> bytes:
        path = (self.root / relative).resolve()
        if self.root not in path.parents:  # a symlink pointing outside
            raise ImageSourceError(f"{str(relative)!r} leaves the images folder")
        if not path.is_file():
            raise ImageSourceError(f"{str(relative)!r} is not in {self.describe()}")
        size = path.stat().st_size
        if size > settings.CATALOG_IMAGE_MAX_BYTES:
            raise ImageSourceError(
                f"{str(relative)!r} is {size:,} bytes; the limit is "
                f"{settings.CATALOG_IMAGE_MAX_BYTES:,} bytes"
            )
        return path.read_bytes()


def _is_archiver_litter(name: str) -> bool:
    """Entries that macOS Finder adds to every ZIP it makes."""
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1] == ".DS_Store"


class ZipImages:
    """Images inside an uploaded ZIP (the admin page). Members are read, never extracted.

    A ZIP made by compressing the images folder itself has one top-level folder; paths are
    then looked up inside it too, so both ways of zipping work.
    """

    def __init__(self, file):
        try:
            self.zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError):
            raise ImageSourceError("the images file is not a valid ZIP archive") from None
        self.members = {
            info.filename: info for info in self.zip.infolist()
            if not info.is_dir() and not _is_archiver_litter(info.filename)
        }
        tops = {name.split("/", 1)[0] for name in self.members}
        self.prefix = ""
        if len(tops) == 1 and all("/" in name for name in self.members):
            self.prefix = tops.pop() + "/"

    def describe(self) -> str:
        return "the images ZIP"

    def read(self, relative: PurePosixPath) -> bytes:
        info = self.members.get(str(relative)) or self.members.get(self.prefix + str(relative))
        if info is None:
            raise ImageSourceError(f"{str(relative)!r} is not in {self.describe()}")
        # file_size is what the archive claims; reading stops one byte past the limit anyway.
        limit = settings.CATALOG_IMAGE_MAX_BYTES
        if info.file_size > limit:
            raise ImageSourceError(
                f"{str(relative)!r} is {info.file_size:,} bytes; the limit is {limit:,} bytes"
            )
        try:
            with self.zip.open(info) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            raise ImageSourceError(f"{str(relative)!r} cannot be read from the ZIP ({exc})") from None
        if len(data) > limit:
            raise ImageSourceError(f"{str(relative)!r} is larger than {limit:,} bytes")
        return data


# --- parsing and cleaning -----------------------------------------------------------------

def _decode(data: bytes) -> str:
    if len(data) > settings.CATALOG_IMPORT_MAX_CSV_BYTES:
        raise ImportAborted(RowError(0, "", (
            f"the CSV file is {len(data):,} bytes; the limit is "
            f"{settings.CATALOG_IMPORT_MAX_CSV_BYTES:,} bytes. Split it into smaller files."
        )))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportAborted(RowError(line, "", (
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded). "
            "Save it as 'CSV UTF-8'."
        ))) from None
    if not text.strip():
        raise ImportAborted(RowError(1, "", "the file is empty; expected a header line and rows"))
    return text


def _detect_format(header: list[str], kind: ImportKind | None) -> CsvFormat:
    names = set(header)
    for position, name in enumerate(header, start=1):
        if not name:
            raise ImportAborted(RowError(1, f"#{position}", "the header has an empty column name"))
        if header.count(name) > 1:
            raise ImportAborted(RowError(1, name, "this column appears more than once in the header"))
    if kind is None:
        matches = [fmt for fmt in FORMATS.values() if set(fmt.columns) == names]
        if matches:
            return matches[0]
        # Report against the closest format so the errors say what to fix.
        fmt = max(FORMATS.values(), key=lambda f: (len(names & set(f.columns)), -len(f.columns)))
    else:
        fmt = FORMATS[kind]
    errors = [RowError(1, col, f"missing column (the {fmt.kind.label.lower()} format needs it)")
              for col in fmt.columns if col not in names]
    errors += [RowError(1, col, f"unknown column for the {fmt.kind.label.lower()} format "
                                f"(expected: {', '.join(fmt.columns)})")
               for col in header if col not in fmt.columns]
    if errors:
        raise _HeaderErrors(errors)
    return fmt


class _HeaderErrors(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


@dataclass
class _Row:
    line: int
    sku: str
    values: dict[str, object]
    image: PreparedImage | None = None


def _clean_int(raw: str) -> int:
    text = raw.strip()
    if not text:
        raise ValueError("is empty; expected a whole number")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{value} is negative; sales counts start at 0")
    if value > 2_147_483_647:
        raise ValueError(f"{value} is too large")
    return value


def _clean_price(raw: str) -> Decimal:
    text = raw.strip()
    if not text:
        raise ValueError("is empty; expected a price such as 49.90")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{raw!r} is not a number; expected a price such as 49.90") from None
    if not value.is_finite():
        raise ValueError(f"{raw!r} is not a number; expected a price such as 49.90")
    if value < 0:
        raise ValueError(f"{value} is negative")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{raw!r} has more than two decimals")
    if value >= Decimal("1e8"):
        raise ValueError(f"{raw!r} is too large")
    return value.quantize(Decimal("0.01"))


def _clean_text(column: str, raw: str) -> str:
    value = " ".join(raw.split()) if column != "description" else raw.strip()
    if column in REQUIRED_TEXT and not value:
        raise ValueError("is empty")
    max_length = Product._meta.get_field(TEXT_FIELDS[column]).max_length
    if max_length and len(value) > max_length:
        raise ValueError(f"is {len(value)} characters long; the limit is {max_length}")
    return value


def _clean_sku(raw: str) -> str:
    sku = raw.strip()
    if not sku:
        raise ValueError("is empty")
    if len(sku) > Product._meta.get_field("sku").max_length:
        raise ValueError(f"{sku!r} is longer than 64 characters")
    try:
        sku_validator(sku)
    except ValidationError as exc:
        raise ValueError(f"{sku!r}: {exc.messages[0]}") from None
    return sku


def _clean_row(fmt: CsvFormat, line: int, record: dict[str, str], images, errors: list[RowError]):
    values: dict[str, object] = {}
    row_errors: list[RowError] = []

    def cell(column: str, cleaner: Callable[[str], object]):
        try:
            return cleaner(record[column])
        except ValueError as exc:
            row_errors.append(RowError(line, column, str(exc)))
            return None

    sku = cell(fmt.sku_column, _clean_sku)
    for column in fmt.columns:
        if column in TEXT_FIELDS:
            values[TEXT_FIELDS[column]] = cell(column, lambda raw, c=column: _clean_text(c, raw))
    if "sales_count" in fmt.columns:
        values["sales_count"] = cell("sales_count", _clean_int)
    if "price" in fmt.columns:
        values["price"] = cell("price", _clean_price)
    prepared = None
    if "image_path" in fmt.columns:
        try:
            prepared = image_prepare(images.read(safe_relative_path(record["image_path"])))
        except ImageSourceError as exc:
            row_errors.append(RowError(line, "image_path", f"image path {exc}"))
        except ImageRejected as exc:
            row_errors.append(RowError(line, "image_path", f"{record['image_path'].strip()!r}: {exc}"))
    errors.extend(row_errors)
    if row_errors:
        return None
    return _Row(line=line, sku=sku, values=values, image=prepared)


def _parse(text: str, kind: ImportKind | None, images, progress) -> tuple[CsvFormat, list[_Row], list[RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
        fmt = _detect_format(header, kind)
    except csv.Error as exc:
        raise ImportAborted(RowError(reader.line_num, "", f"the header cannot be read as CSV ({exc})")) from None
    if fmt.kind != ImportKind.SALES and images is None:
        raise ImportAborted(RowError(1, "image_path", "this format needs its images: give the images folder or ZIP"))

    rows: list[_Row] = []
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
        cleaned = _clean_row(fmt, row_line, record, images, errors)
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

def _plan(fmt: CsvFormat, rows: list[_Row], errors: list[RowError]) -> list[tuple[_Row, RowPlan, Product]]:
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
        if product is None:
            product = Product(sku=row.sku)
            action = ImportAction.CREATE
            changes = []
        else:
            changes = [name for name, value in wanted.items() if getattr(product, name) != value]
            if row.image and product.image_sha256 != row.image.sha256:
                changes.append("image")
            action = ImportAction.UPDATE if changes else ImportAction.UNCHANGED
        for name, value in wanted.items():
            setattr(product, name, value)
        if row.image and (action == ImportAction.CREATE or "image" in changes):
            product.image = row.image.storage_name
            product.thumbnail = row.image.thumbnail_name
            product.image_sha256 = row.image.sha256
            product.image_width, product.image_height = row.image.width, row.image.height
        plans.append((row, RowPlan(row.line, row.sku, action, changes), product))
    return plans


def _write(fmt: CsvFormat, plans: list[tuple[_Row, RowPlan, Product]], *, sync_index: bool) -> None:
    """Store new images, then write every row in one transaction; undo the files on failure."""
    created_files: list[str] = []
    try:
        for row, plan, _ in plans:
            if row.image and (plan.action == ImportAction.CREATE or "image" in plan.changes):
                created_files += image_store(row.image)
        now = timezone.now()
        to_create, to_update, fields = [], [], {"updated_at", "index_state"}
        for _, plan, product in plans:
            if plan.action == ImportAction.UNCHANGED:
                continue
            product.updated_at = now  # bulk_update skips auto_now
            product.index_state = IndexState.PENDING  # bulk writes skip Product.save()
            if "sales_count" in fmt.columns and (
                plan.action == ImportAction.CREATE or "sales_count" in plan.changes
            ):
                product.sales_updated_at = now
                fields.add("sales_updated_at")
            (to_create if plan.action == ImportAction.CREATE else to_update).append(product)
            fields.update(plan.changes)
        if "image" in fields:
            fields |= {"thumbnail", "image_sha256", "image_width", "image_height"}
        with transaction.atomic():
            Product.objects.bulk_create(to_create, batch_size=500)
            if to_update:
                Product.objects.bulk_update(to_update, sorted(fields), batch_size=500)
            # Bulk writes send no signals: queue the index sync here, sent after commit.
            changed_skus = [p.sku for p in to_create + to_update]
            if changed_skus and sync_index:
                index_schedule_sync(
                    product_ids=list(Product.objects.filter(sku__in=changed_skus).values_list("pk", flat=True)),
                    refit=fmt.kind != ImportKind.SALES and refit_needed(changed=len(changed_skus)),
                )
    except BaseException:
        for name in created_files:
            default_storage.delete(name)
        raise


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

    With sync_index off, changed products stay pending for the periodic reconcile instead of
    being queued (for imports made before the task broker runs).

    Returns the result with a plan per row and every error found. On a dry run, or when any
    row has an error, nothing is written. Hooks that react to the write belong in
    `transaction.on_commit`, so a rolled back import triggers nothing.
    """
    kind = ImportKind(kind) if kind else None
    result = ImportResult(kind=kind, dry_run=dry_run)
    try:
        fmt, rows, result.errors = _parse(_decode(csv_data), kind, images, progress)
    except ImportAborted as exc:
        result.errors = [exc.error]
        return result
    except _HeaderErrors as exc:
        result.errors = exc.errors
        return result
    result.kind = fmt.kind
    plans = _plan(fmt, rows, result.errors)
    result.rows = [plan for _, plan, _ in plans]
    result.errors.sort(key=lambda error: error.line)
    if result.errors or dry_run:
        return result
    _write(fmt, plans, sync_index=sync_index)
    result.applied = True
    return result


def count_data_rows(csv_data: bytes) -> int:
    """A cheap row count for progress bars (the header excluded)."""
    return max(csv_data.count(b"\n") - 1 + (not csv_data.endswith(b"\n")), 0)


def images_for_path(path: str | os.PathLike | None) -> DirectoryImages | ZipImages | None:
    """The image source for a command-line argument: a folder or a .zip file."""
    if path is None:
        return None
    if str(path).lower().endswith(".zip"):
        return ZipImages(open(path, "rb"))
    return DirectoryImages(path)
