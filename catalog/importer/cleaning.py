"""Cleaning each cell of a row: errors name the line, the column and the reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError

from catalog.images import ImageRef, ImageRejected
from catalog.importer.formats import REQUIRED_TEXT, TEXT_FIELDS, CsvFormat, RowError
from catalog.importer.sources import ImageSourceError, Photos
from catalog.models import Product, sku_validator


@dataclass
class CleanRow:
    line: int
    sku: str
    values: dict[str, object]
    image: ImageRef | None = None


# Numbers in a CSV are written in ASCII digits only: Python's int() and Decimal() would also take
# "1_000", Arabic-Indic or full-width digits and exponents, which no spreadsheet writes on purpose
# and which a person reading the file would not see as the number it becomes.
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
SHOWN_CHARS = 40  # of a cell quoted in an error: a 10 KB cell makes a line, not a page
MAX_SALES_COUNT = 2_147_483_647  # the largest PositiveIntegerField on every database


def shown(raw: str) -> str:
    """A cell as an error quotes it: its repr, cut short when long."""
    text = raw.strip()
    if len(text) > SHOWN_CHARS:
        return repr(text[: SHOWN_CHARS - 1] + "…") + f" ({len(text):,} characters)"
    return repr(text)


SEPARATOR = re.compile(r"[_, '\u00a0\u202f]")
EXPONENT = re.compile(r"[0-9.][eE][+-]?[0-9]")


def _not_plain(text: str) -> str:
    """Why a cell that looks like a number is refused, when the reason is not plain to see."""
    if not text.isascii() and any(char.isdigit() for char in text if not char.isascii()):
        return " (it has digits other than 0-9: write numbers in the digits 0-9)"
    if SEPARATOR.search(text):
        return " (write it without thousands separators or spaces)"
    if EXPONENT.search(text):
        return " (write it in full, without an exponent)"
    return ""


def clean_int(raw: str) -> int:
    text = raw.strip()
    if not text:
        raise ValueError("is empty; expected a whole number")
    if not WHOLE_NUMBER.fullmatch(text):
        raise ValueError(f"{shown(raw)} is not a whole number{_not_plain(text)}")
    if text.startswith("-") and text.strip("-0"):
        raise ValueError(f"{text[:SHOWN_CHARS]} is negative; sales counts start at 0")
    if len(text.lstrip("+-0")) > len(str(MAX_SALES_COUNT)) or int(text) > MAX_SALES_COUNT:
        raise ValueError(f"{shown(raw)} is too large; the limit is {MAX_SALES_COUNT:,}")
    return int(text)


def _price_limit() -> Decimal:
    """The first price the model's DecimalField cannot hold (10 digits, 2 after the point)."""
    field = Product._meta.get_field("price")
    return Decimal(10) ** (field.max_digits - field.decimal_places)


def clean_price(raw: str) -> Decimal:
    """A price in the digits 0-9 with an optional point and at most two decimals. No exponent
    ("1e3"), NaN or infinity, which Decimal would take: a price is written in full."""
    text = raw.strip()
    if not text:
        raise ValueError("is empty; expected a price such as 49.90")
    if not PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(
            f"{shown(raw)} is not a number; expected a price such as 49.90{_not_plain(text)}"
        )
    value = Decimal(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    if value >= _price_limit():  # before quantize, which fails past Decimal's 28 digits
        raise ValueError(f"{shown(raw)} is too large; a price must be below {_price_limit():,}")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{shown(raw)} has more than two decimals")
    return abs(value).quantize(Decimal("0.01"))  # "-0" is 0.00


def clean_text(column: str, raw: str) -> str:
    value = " ".join(raw.split()) if column != "description" else raw.strip()
    if column in REQUIRED_TEXT and not value:
        raise ValueError("is empty")
    max_length = Product._meta.get_field(TEXT_FIELDS[column]).max_length
    if max_length and len(value) > max_length:
        raise ValueError(f"is {len(value)} characters long; the limit is {max_length}")
    return value


def clean_sku(raw: str) -> str:
    sku = raw.strip()
    if not sku:
        raise ValueError("is empty")
    if len(sku) > Product._meta.get_field("sku").max_length:
        raise ValueError(f"{shown(sku)} is longer than 64 characters")
    try:
        sku_validator(sku)
    except ValidationError as exc:
        raise ValueError(f"{shown(sku)}: {exc.messages[0]}") from None
    return sku


def clean_row(
    fmt: CsvFormat, line: int, record: dict[str, str], photos: Photos | None, errors: list[RowError]
):
    values: dict[str, object] = {}
    row_errors: list[RowError] = []

    def cell(column: str, cleaner: Callable[[str], object]):
        try:
            return cleaner(record[column])
        except ValueError as exc:
            row_errors.append(RowError(line, column, str(exc)))
            return None

    sku = cell(fmt.sku_column, clean_sku)
    # An optional column the file leaves out is not in the record: its field stays as it is.
    for column in fmt.allowed:
        if column in TEXT_FIELDS and column in record:
            values[TEXT_FIELDS[column]] = cell(column, lambda raw, c=column: clean_text(c, raw))
    if "sales_count" in fmt.columns:
        values["sales_count"] = cell("sales_count", clean_int)
    if "price" in fmt.columns:
        values["price"] = cell("price", clean_price)
    photo = None
    if "image_path" in fmt.columns:
        try:
            photo = photos.get(record["image_path"])
        except ImageSourceError as exc:
            row_errors.append(RowError(line, "image_path", f"image path {exc}"))
        except ImageRejected as exc:
            row_errors.append(RowError(line, "image_path", f"{shown(record['image_path'])}: {exc}"))
    errors.extend(row_errors)
    if row_errors:
        return None
    return CleanRow(line=line, sku=sku, values=values, image=photo)
