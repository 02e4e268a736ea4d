"""The three CSV formats, told apart by their header, and errors that name line and column."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models


class ImportKind(models.TextChoices):
    HISTORICAL = "historical", "Historical catalog"
    NEW = "new", "New products"
    SALES = "sales", "Sales update"


@dataclass(frozen=True)
class CsvFormat:
    kind: ImportKind
    columns: tuple[str, ...]  # every file of the format has these
    sku_column: str
    # Columns a file may add (they came after the seed's formats): a file without one leaves
    # that field of its products as it is.
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.columns + self.optional

    def matches(self, names: set[str]) -> bool:
        return set(self.columns) <= names <= set(self.allowed)


FORMATS = {
    ImportKind.HISTORICAL: CsvFormat(
        ImportKind.HISTORICAL,
        (
            "product_id",
            "image_path",
            "category",
            "color",
            "style",
            "season",
            "sales_count",
            "description",
            "price",
        ),
        "product_id",
        optional=("name",),
    ),
    ImportKind.NEW: CsvFormat(
        ImportKind.NEW,
        ("new_id", "image_path", "category", "style", "season", "prompt_hint"),
        "new_id",
        optional=("name",),
    ),
    ImportKind.SALES: CsvFormat(ImportKind.SALES, ("sku", "sales_count"), "sku"),
}

# CSV column -> Product field, for the columns that are copied as cleaned text.
TEXT_FIELDS = {
    "name": "name",
    "category": "category",
    "color": "color",
    "style": "style",
    "season": "season",
    "description": "description",
    "prompt_hint": "prompt_hint",
}
REQUIRED_TEXT = {"category"}


MAX_ERROR_CHARS = 300  # an error quoting a huge cell stays a line of the report


@dataclass(frozen=True)
class RowError:
    line: int  # 0 when the error concerns the file as a whole
    column: str
    message: str

    def __post_init__(self):
        if len(self.message) > MAX_ERROR_CHARS:
            object.__setattr__(self, "message", self.message[: MAX_ERROR_CHARS - 1] + "…")

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        where += [f"column {self.column!r}"] if self.column else []
        return f"{', '.join(where) or 'file'}: {self.message}"


KEPT_ERRORS = 10_000  # errors an import keeps in full; the rest are counted


class RowErrors(list):
    """An import's errors: the first KEPT_ERRORS in full, every one counted.

    A 20 MB file of bad rows has millions of errors; kept, they took 2.3 GB of memory and a
    report as large as the file. `total` counts them all and `lines` the rows they are on
    (errors of a row arrive together, so a change of line is a new row).
    """

    def __init__(self, errors=(), keep: int = KEPT_ERRORS):
        super().__init__()
        self.keep, self.total, self.lines, self._last_line = keep, 0, 0, None
        self.extend(errors)

    def append(self, error: RowError) -> None:
        self.total += 1
        if error.line != self._last_line:
            self.lines, self._last_line = self.lines + 1, error.line
        if len(self) < self.keep:
            super().append(error)

    def extend(self, errors) -> None:
        for error in errors:
            self.append(error)


class ImportAborted(Exception):
    """A file-level problem: nothing after it can be read meaningfully."""

    def __init__(self, error: RowError):
        super().__init__(str(error))
        self.error = error


def decode_csv(data: bytes) -> str:
    if len(data) > settings.CATALOG_IMPORT_MAX_CSV_BYTES:
        raise ImportAborted(
            RowError(
                0,
                "",
                (
                    f"the CSV file is {len(data):,} bytes; the limit is "
                    f"{settings.CATALOG_IMPORT_MAX_CSV_BYTES:,} bytes. Split it into smaller files."
                ),
            )
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportAborted(
            RowError(
                line,
                "",
                (
                    f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded). "
                    "Save it as 'CSV UTF-8'."
                ),
            )
        ) from None
    if not text.strip():
        raise ImportAborted(RowError(1, "", "the file is empty; expected a header line and rows"))
    return text


def detect_format(header: list[str], kind: ImportKind | None) -> CsvFormat:
    names = set(header)
    for position, name in enumerate(header, start=1):
        if not name:
            raise ImportAborted(RowError(1, f"#{position}", "the header has an empty column name"))
        if header.count(name) > 1:
            raise ImportAborted(
                RowError(1, name, "this column appears more than once in the header")
            )
    if kind is None:
        matches = [fmt for fmt in FORMATS.values() if fmt.matches(names)]
        if matches:
            return matches[0]
        # Report against the closest format so the errors say what to fix; a header that is
        # not close to any of them is told the formats there are.
        fmt = max(FORMATS.values(), key=lambda f: (len(names & set(f.columns)), -len(f.columns)))
        if len(names & set(fmt.columns)) * 2 < len(fmt.columns):
            known = "; ".join(f"{f.kind.label.lower()} ({_described(f)})" for f in FORMATS.values())
            raise HeaderErrors(
                [RowError(1, "", f"this header matches none of the CSV formats: {known}")]
            )
    else:
        fmt = FORMATS[kind]
    errors = [
        RowError(1, col, f"missing column (the {fmt.kind.label.lower()} format needs it)")
        for col in fmt.columns
        if col not in names
    ]
    errors += [
        RowError(
            1,
            col,
            f"unknown column for the {fmt.kind.label.lower()} format (expected: {_described(fmt)})",
        )
        for col in header
        if col not in fmt.allowed
    ]
    if errors:
        raise HeaderErrors(errors)
    return fmt


def _described(fmt: CsvFormat) -> str:
    """Its columns as an error lists them: "product_id, …, price; optional: name"."""
    optional = f"; optional: {', '.join(fmt.optional)}" if fmt.optional else ""
    return ", ".join(fmt.columns) + optional


class HeaderErrors(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors
