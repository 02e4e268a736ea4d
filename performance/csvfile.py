"""Reading a channel's performance CSV (Google Merchant Center / Ads style): its header, then
each row cleaned, every error naming the line, the column and the reason.

The cells are cleaned by the catalog importer's functions, so a number is read the same way
in both imports (ASCII digits only, no separators or exponents).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import unquote, urlsplit

from django.utils import timezone

from catalog.importer.cleaning import clean_int, clean_price, clean_sku, shown
from catalog.importer.formats import HeaderErrors, ImportAborted, RowError, RowErrors, decode_csv

REQUIRED = ("date", "impressions", "clicks")
# Each row names its image by one of these (both may be given; they must then agree) ...
IMAGE_COLUMNS = ("sku", "image_url")
# ... and its channel by one of these: the channel preset's name.
CHANNEL_COLUMNS = ("channel", "preset")
OPTIONAL = ("add_to_carts", "orders", "revenue")
KNOWN = REQUIRED + IMAGE_COLUMNS + CHANNEL_COLUMNS + OPTIONAL
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A published image's stable name (generation.review.published_name), at the end of its URL
# on this site or under PUBLISHED_BASE_URL: published/<sku>/preset-<id>.<extension>
PUBLISHED_NAME = re.compile(r"(?:^|/)published/(?P<sku>[^/]+)/preset-(?P<preset>[0-9]+)\.\w+$")


@dataclass(frozen=True)
class PerformanceRow:
    """One cleaned row: which image (by SKU, and by preset id when a URL named it), which
    channel preset (by name), which day, and the figures of the columns the file has."""

    line: int
    sku: str
    preset_name: str
    preset_id: int | None  # from the image URL
    date: date
    figures: dict[str, object]


def read_header(header: list[str]) -> list[RowError]:
    """What is wrong with the header: missing, unknown or repeated columns."""
    names = set(header)
    errors = [
        RowError(1, name, "this column appears more than once in the header")
        for name in sorted(names)
        if header.count(name) > 1
    ]
    errors += [
        RowError(1, name, f"unknown column (expected: {', '.join(KNOWN)})")
        for name in header
        if name not in KNOWN
    ]
    errors += [RowError(1, name, "missing column") for name in REQUIRED if name not in names]
    if not names & set(IMAGE_COLUMNS):
        errors.append(RowError(1, "sku", "missing column: name the image by sku or image_url"))
    if not names & set(CHANNEL_COLUMNS):
        errors.append(RowError(1, "channel", "missing column: name the channel or preset"))
    if names >= set(CHANNEL_COLUMNS):
        errors.append(RowError(1, "preset", "give channel or preset, not both"))
    return errors


def clean_count(raw: str) -> int:
    text = raw.strip()
    if text.startswith("-") and text.strip("-0"):
        raise ValueError(f"{shown(raw)} is negative; counts start at 0")
    return clean_int(raw)


def clean_date(raw: str) -> date:
    text = raw.strip()
    if not ISO_DATE.fullmatch(text):
        raise ValueError(f"{shown(raw)} is not a date written as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{shown(raw)} is not a date of the calendar") from None
    if day > timezone.localdate():
        raise ValueError(f"{text} is in the future")
    return day


def clean_image_url(raw: str) -> tuple[str, int]:
    """The SKU and preset id a published image's URL names."""
    found = PUBLISHED_NAME.search(urlsplit(raw.strip()).path)
    if found is None:
        raise ValueError(
            f"{shown(raw)} is not a published image's URL "
            "(expected …/published/<sku>/preset-<id>.<extension>)"
        )
    return clean_sku(unquote(found["sku"])), int(found["preset"])


def clean_optional(cleaner, raw: str, empty: object) -> object:
    return empty if not raw.strip() else cleaner(raw)


def clean_record(line: int, record: dict[str, str], errors: RowErrors) -> PerformanceRow | None:
    """The row cleaned, or None when it has errors (added to `errors`)."""
    row_errors: list[RowError] = []

    def cell(column: str, cleaner):
        try:
            return cleaner(record[column])
        except ValueError as exc:
            row_errors.append(RowError(line, column, str(exc)))
            return None

    # PostgreSQL keeps no NUL in text (the report is JSON text): a row holding one is refused.
    if nul := next((column for column, raw in record.items() if "\x00" in raw), None):
        errors.append(RowError(line, nul, "holds a NUL character; export the file again"))
        return None
    sku = cell("sku", clean_sku) if "sku" in record else None
    preset_id = None
    if "image_url" in record:
        named = cell("image_url", clean_image_url)
        if named is not None:
            if sku is not None and named[0] != sku:
                row_errors.append(
                    RowError(line, "image_url", f"names SKU {named[0]!r}, the row's sku {sku!r}")
                )
            sku, preset_id = named[0], named[1]
    channel = "channel" if "channel" in record else "preset"
    preset_name = " ".join(record[channel].split())
    if not preset_name:
        row_errors.append(RowError(line, channel, "is empty; name the channel preset"))
    day = cell("date", clean_date)
    figures = {column: cell(column, clean_count) for column in ("impressions", "clicks")}
    for column in ("add_to_carts", "orders"):
        if column in record:
            figures[column] = cell(column, lambda raw: clean_optional(clean_count, raw, 0))
    if "revenue" in record:
        figures["revenue"] = cell("revenue", lambda raw: clean_optional(clean_price, raw, None))
    clicks, impressions = figures.get("clicks"), figures.get("impressions")
    if clicks is not None and impressions is not None and clicks > impressions:
        row_errors.append(
            RowError(line, "clicks", f"{clicks} clicks is more than the {impressions} impressions")
        )
    errors.extend(row_errors)
    if row_errors:
        return None
    return PerformanceRow(
        line=line,
        sku=sku,
        preset_name=preset_name,
        preset_id=preset_id,
        date=day,
        figures=figures,
    )


def read_rows(data: bytes, errors: RowErrors) -> list[PerformanceRow]:
    """Every clean row of the file; what is wrong goes to `errors` (a file-level problem
    raises ImportAborted or HeaderErrors, as in the catalog import)."""
    reader = csv.reader(io.StringIO(decode_csv(data), newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise ImportAborted(
            RowError(reader.line_num, "", f"the header cannot be read as CSV ({exc})")
        ) from None
    if header_errors := read_header(header):
        raise HeaderErrors(header_errors)
    rows = []
    while True:
        line = reader.line_num + 1  # where the row starts (a quoted cell may span lines)
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the rest of the file cannot be read in step
            errors.append(RowError(line, "", f"this row cannot be read as CSV ({exc})"))
            break
        if not any(value.strip() for value in values):
            continue  # a blank line, as spreadsheets leave at the end
        if len(values) != len(header):
            errors.append(
                RowError(line, "", f"has {len(values)} cells; the header has {len(header)}")
            )
            continue
        row = clean_record(line, dict(zip(header, values, strict=True)), errors)
        if row is not None:
            rows.append(row)
    return rows
