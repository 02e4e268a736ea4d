"""Cleaning each cell of a row: errors name the line, the column and the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

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


def clean_int(raw: str) -> int:
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


def clean_price(raw: str) -> Decimal:
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
        raise ValueError(f"{sku!r} is longer than 64 characters")
    try:
        sku_validator(sku)
    except ValidationError as exc:
        raise ValueError(f"{sku!r}: {exc.messages[0]}") from None
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
            row_errors.append(
                RowError(line, "image_path", f"{record['image_path'].strip()!r}: {exc}")
            )
    errors.extend(row_errors)
    if row_errors:
        return None
    return CleanRow(line=line, sku=sku, values=values, image=photo)
