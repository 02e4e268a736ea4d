"""Builders for test data: images, CSV files and products."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from pathlib import Path

from PIL import Image

from catalog.images import image_prepare
from catalog.importer import DirectoryImages, catalog_import
from catalog.models import Product
from catalog.services import product_save
from generation.providers import ImageGenerator, QualityChecker, StyleAnalyst

HISTORICAL_HEADER = [
    "product_id",
    "image_path",
    "category",
    "color",
    "style",
    "season",
    "sales_count",
    "description",
    "price",
]
NEW_HEADER = ["new_id", "image_path", "category", "style", "season", "prompt_hint"]


def image_bytes(color="navy", size=(64, 80), fmt="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions in its header: a decompression bomb's signature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def historical_row(
    sku="SKU001",
    image="SKU001.jpg",
    category="dress",
    color="red",
    style="casual",
    season="summer",
    sales=2000,
    description="Red linen dress",
    price="49.90",
) -> list[object]:
    return [sku, image, category, color, style, season, sales, description, price]


def write_images(folder: Path, names: list[str], color="navy") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(image_bytes(color))
    return folder


def make_product(sku="SKU001", *, color="navy", **fields) -> Product:
    fields.setdefault("category", "dress")
    product = Product(sku=sku, **fields)
    return product_save(product=product, image=image_prepare(image_bytes(color)))


# --- provider doubles, picked by dotted path like the real ones (only is_offline matters) --


class PaidAnalyst(StyleAnalyst):
    is_offline = False


class PaidGenerator(ImageGenerator):
    is_offline = False


class PaidChecker(QualityChecker):
    is_offline = False


class OfflineAnalyst(StyleAnalyst):
    is_offline = True


class OfflineChecker(QualityChecker):
    is_offline = True


class OfflineGenerator(ImageGenerator):
    is_offline = True


def use_providers(settings, kind: str) -> None:
    """Point the provider settings at the "Paid" or "Offline" doubles."""
    settings.STYLE_ANALYST_BACKEND = f"{__name__}.{kind}Analyst"
    settings.IMAGE_GENERATOR_BACKEND = f"{__name__}.{kind}Generator"
    settings.QUALITY_CHECKER_BACKEND = f"{__name__}.{kind}Checker"


def sample_catalog_import(sample_catalog) -> None:
    """The sample catalog's bestsellers and new products, imported without indexing them (the
    caller builds or wipes the index as its test needs)."""
    for csv_file, images in (
        (sample_catalog.products_csv, "images"),
        (sample_catalog.new_products_csv, "new_products"),
    ):
        result = catalog_import(
            csv_data=csv_file.read_bytes(),
            images=DirectoryImages(sample_catalog.directory / images),
            sync_index=False,
        )
        assert result.ok, result.errors
