import io
import os
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from catalog.importer import DirectoryImages, ImportAction, ImportKind, ZipImages, catalog_import
from catalog.models import Product
from tests.factories import (
    HISTORICAL_HEADER,
    NEW_HEADER,
    csv_bytes,
    historical_row,
    image_bytes,
    make_product,
    png_header_only,
    write_images,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images", ["SKU001.jpg", "SKU002.jpg", "SKU003.jpg"])


def run(data: bytes, images_dir: Path | None, **kwargs):
    source = DirectoryImages(images_dir) if images_dir else None
    return catalog_import(csv_data=data, images=source, **kwargs)


def stored_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def assert_rejected(result, settings, line, column, *words):
    """The import failed with the given error, and neither rows nor files were written."""
    assert not result.applied
    assert any(
        e.line == line and e.column == column and all(w in e.message for w in words)
        for e in result.errors
    ), [str(e) for e in result.errors]
    assert Product.objects.count() == 0
    assert stored_files(settings) == []


THREE_ROWS = csv_bytes(
    HISTORICAL_HEADER,
    [
        historical_row("SKU001", "SKU001.jpg", sales=2000),
        historical_row("SKU002", "SKU002.jpg", category="top", sales=100, price="19.00"),
        historical_row("SKU003", "SKU003.jpg", sales=1500, description="Blue cotton dress"),
    ],
)


# --- the formats ---------------------------------------------------------------------------


def test_historical_import_creates_products_with_reencoded_images(images, settings):
    result = run(THREE_ROWS, images)

    assert result.ok and result.applied
    assert result.kind == ImportKind.HISTORICAL
    assert (result.created, result.updated, result.unchanged, result.failed) == (3, 0, 0, 0)
    product = Product.objects.get(sku="SKU002")
    assert product.lifecycle == Product.Lifecycle.HISTORICAL
    assert (product.category, product.sales_count, product.price) == ("top", 100, Decimal("19.00"))
    assert product.image.name == f"products/{product.image_sha256[:2]}/{product.image_sha256}.jpg"
    assert product.thumbnail.name.startswith("products/thumbs/")
    assert Image.open(product.thumbnail.path).size[1] <= settings.CATALOG_THUMBNAIL_SIZE
    assert (product.image_width, product.image_height) == (64, 80)
    assert product.sales_updated_at is not None


def test_importing_the_same_file_twice_changes_nothing(images, settings):
    run(THREE_ROWS, images)
    before = {p.sku: p.updated_at for p in Product.objects.all()}
    files = stored_files(settings)

    again = run(THREE_ROWS, images)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert {p.sku: p.updated_at for p in Product.objects.all()} == before
    assert stored_files(settings) == files


def test_reimport_updates_only_changed_rows_and_names_the_fields(images):
    run(THREE_ROWS, images)
    (images / "SKU003.jpg").write_bytes(image_bytes("orange"))
    changed = csv_bytes(
        HISTORICAL_HEADER,
        [
            historical_row("SKU001", "SKU001.jpg", sales=2000),
            historical_row("SKU002", "SKU002.jpg", category="top", sales=100, price="21.50"),
            historical_row("SKU003", "SKU003.jpg", sales=1500, description="Blue cotton dress"),
        ],
    )

    result = run(changed, images)

    plans = {row.sku: row for row in result.rows}
    assert plans["SKU001"].action == ImportAction.UNCHANGED
    assert [str(change) for change in plans["SKU002"].changes] == ["price: 19.00 → 21.50"]
    assert plans["SKU003"].changed_fields == ["image"]
    assert Product.objects.get(sku="SKU002").price == Decimal("21.50")


def test_new_products_import_marks_them_awaiting_promos(tmp_path):
    folder = write_images(tmp_path / "new", ["NEW001.jpg"])
    data = csv_bytes(
        NEW_HEADER,
        [["NEW001", "NEW001.jpg", "dress", "boho", "summer", "beach at sunset, walking pose"]],
    )

    result = run(data, folder)

    assert result.kind == ImportKind.NEW and result.created == 1
    product = Product.objects.get(sku="NEW001")
    assert product.lifecycle == Product.Lifecycle.NEW
    assert product.prompt_hint == "beach at sunset, walking pose"
    assert product.price is None and product.sales_count == 0


def test_sales_update_changes_only_sales_counts():
    product = make_product("SKU001", sales_count=10, description="kept")
    data = csv_bytes(["sku", "sales_count"], [["SKU001", 2500]])

    result = run(data, None)

    assert result.kind == ImportKind.SALES and result.updated == 1
    assert [str(change) for change in result.rows[0].changes] == ["sales_count: 10 → 2500"]
    assert result.rows[0].bestseller == "becomes a bestseller"
    product.refresh_from_db()
    assert (product.sales_count, product.description) == (2500, "kept")
    assert product.sales_updated_at is not None


def test_sales_update_for_an_unknown_sku_is_an_error():
    make_product("SKU001")
    result = run(csv_bytes(["sku", "sales_count"], [["SKU001", 5], ["NOPE", 7]]), None)

    assert [(e.line, e.column) for e in result.errors] == [(3, "sku")]
    assert "no product with sku 'NOPE'" in result.errors[0].message
    assert Product.objects.get(sku="SKU001").sales_count == 0


def test_utf8_with_bom_is_accepted(images):
    result = run("\ufeff".encode() + THREE_ROWS, images)
    assert result.ok and result.created == 3


def test_dry_run_plans_but_writes_nothing(images, settings):
    result = run(THREE_ROWS, images, dry_run=True)

    assert result.ok and not result.applied
    assert result.created == 3
    assert Product.objects.count() == 0
    assert stored_files(settings) == []


def test_explicit_kind_that_does_not_match_the_header_is_an_error(images, settings):
    result = run(THREE_ROWS, images, kind=ImportKind.NEW)
    assert_rejected(result, settings, 1, "new_id", "missing column")


def test_images_can_come_from_a_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("SKU001.jpg", "SKU002.jpg", "SKU003.jpg"):
            archive.writestr(name, image_bytes())
    result = catalog_import(csv_data=THREE_ROWS, images=ZipImages(buffer))
    assert result.ok and result.created == 3


def test_an_uploaded_png_with_a_hidden_payload_is_stored_without_it(images):
    payload = b"<script>alert('x')</script>"
    (images / "SKU001.jpg").write_bytes(image_bytes(fmt="PNG") + payload)

    assert run(THREE_ROWS, images).ok

    stored = Product.objects.get(sku="SKU001").image.read()
    assert payload not in stored
    assert Image.open(io.BytesIO(stored)).format == "JPEG"


def named(header: list[str], rows: list[list[object]], names: list[str], at: int = 1):
    """The same file with a `name` column put in at position `at` (any position is fine)."""
    return csv_bytes(
        [*header[:at], "name", *header[at:]],
        [[*row[:at], name, *row[at:]] for row, name in zip(rows, names, strict=True)],
    )


def test_both_catalog_formats_take_an_optional_name_column(images, tmp_path):
    historical = named(
        HISTORICAL_HEADER,
        [historical_row("SKU001", "SKU001.jpg"), historical_row("SKU002", "SKU002.jpg")],
        ["  Red   linen  wrap dress ", ""],
        at=len(HISTORICAL_HEADER),
    )
    new = named(
        NEW_HEADER,
        [["NEW001", "NEW001.jpg", "dress", "boho", "summer", "beach at sunset"]],
        ["Boho maxi dress"],
    )

    assert run(historical, images).kind == ImportKind.HISTORICAL
    assert run(new, write_images(tmp_path / "new", ["NEW001.jpg"])).kind == ImportKind.NEW

    names = dict(Product.objects.values_list("sku", "name"))
    assert names == {"SKU001": "Red linen wrap dress", "SKU002": "", "NEW001": "Boho maxi dress"}


def test_a_file_without_the_name_column_imports_as_before_and_keeps_the_names(images):
    """The seed's formats, byte for byte: nothing about them changed, and a re-import of an
    old file leaves the names given since then alone."""
    assert run(THREE_ROWS, images).created == 3
    Product.objects.filter(sku="SKU001").update(name="Red linen wrap dress")

    again = run(THREE_ROWS, images)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert Product.objects.get(sku="SKU001").name == "Red linen wrap dress"
    assert Product.objects.get(sku="SKU002").name == ""


def test_a_changed_name_is_an_update_named_in_the_preview(images):
    run(THREE_ROWS, images)
    rows = [
        historical_row("SKU001", "SKU001.jpg", sales=2000),
        historical_row("SKU002", "SKU002.jpg", category="top", sales=100, price="19.00"),
    ]

    result = run(named(HISTORICAL_HEADER, rows, ["Red dress", ""]), images, dry_run=True)

    plans = {row.sku: row for row in result.rows}
    assert [str(change) for change in plans["SKU001"].changes] == ["name: — → Red dress"]
    assert plans["SKU001"].name == "Red dress"
    assert plans["SKU002"].action == ImportAction.UNCHANGED


def test_a_name_over_the_limit_is_rejected_with_its_line_and_column(images, settings):
    rows = [historical_row("SKU001", "SKU001.jpg"), historical_row("SKU002", "SKU002.jpg")]
    data = named(HISTORICAL_HEADER, rows, ["Fine", "x" * 201])
    assert_rejected(run(data, images), settings, 3, "name", "201 characters", "limit is 200")


def test_the_sales_update_has_no_name_column(images, settings):
    make_product("SKU001", sales_count=10)
    result = run(csv_bytes(["sku", "sales_count", "name"], [["SKU001", 5, "Red dress"]]), None)

    [error] = result.errors
    assert (error.line, error.column) == (1, "name") and "unknown column" in error.message
    assert Product.objects.get(sku="SKU001").sales_count == 10


# --- bad input: a clear error, nothing written ------------------------------------------


def test_missing_column_is_rejected(images, settings):
    header = [c for c in HISTORICAL_HEADER if c != "price"]
    data = csv_bytes(header, [historical_row()[:-1]])
    assert_rejected(run(data, images), settings, 1, "price", "missing column")


def test_unknown_column_is_rejected(images, settings):
    data = csv_bytes(HISTORICAL_HEADER + ["colour_code"], [historical_row() + ["R1"]])
    assert_rejected(run(data, images), settings, 1, "colour_code", "unknown column")


def test_price_that_is_not_a_number_is_rejected(images, settings):
    data = csv_bytes(
        HISTORICAL_HEADER, [historical_row(), historical_row("SKU002", "SKU002.jpg", price="abc")]
    )
    assert_rejected(run(data, images), settings, 3, "price", "'abc' is not a number")


def test_negative_sales_count_is_rejected(images, settings):
    data = csv_bytes(HISTORICAL_HEADER, [historical_row(sales=-4)])
    assert_rejected(run(data, images), settings, 2, "sales_count", "negative")


def test_sales_count_that_is_not_a_whole_number_is_rejected(images, settings):
    data = csv_bytes(HISTORICAL_HEADER, [historical_row(sales="12.5")])
    assert_rejected(run(data, images), settings, 2, "sales_count", "not a whole number")


def test_sku_twice_in_one_file_is_rejected(images, settings):
    data = csv_bytes(
        HISTORICAL_HEADER,
        [
            historical_row(),
            historical_row("SKU002", "SKU002.jpg"),
            historical_row("SKU001", "SKU003.jpg"),
        ],
    )
    assert_rejected(run(data, images), settings, 4, "product_id", "already appears on line 2")


def test_empty_file_is_rejected(images, settings):
    assert_rejected(run(b"", images), settings, 1, "", "empty")
    assert_rejected(run(b"  \n\n", images), settings, 1, "", "empty")


def test_header_without_rows_is_rejected(images, settings):
    assert_rejected(run(csv_bytes(HISTORICAL_HEADER, []), images), settings, 1, "", "no rows")


def test_non_utf8_file_is_rejected_with_the_line_of_the_bad_byte(images, settings):
    text = THREE_ROWS.decode().replace("Blue cotton dress", "Bleu coton brodé")
    assert_rejected(run(text.encode("latin-1"), images), settings, 4, "", "not UTF-8")


def test_row_with_the_wrong_number_of_fields_is_rejected(images, settings):
    data = THREE_ROWS + b"SKU009,SKU001.jpg,dress\n"
    assert_rejected(run(data, images), settings, 5, "", "expected 9 fields")


def test_image_missing_from_the_folder_is_rejected(images, settings):
    data = csv_bytes(HISTORICAL_HEADER, [historical_row(image="nope.jpg")])
    assert_rejected(run(data, images), settings, 2, "image_path", "'nope.jpg' is not in")


def test_image_missing_from_the_zip_is_rejected(settings):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other.jpg", image_bytes())
    result = catalog_import(
        csv_data=csv_bytes(HISTORICAL_HEADER, [historical_row()]), images=ZipImages(buffer)
    )
    assert_rejected(result, settings, 2, "image_path", "not in the images ZIP")


@pytest.mark.parametrize("path", ["../SKU001.jpg", "sub/../../SKU001.jpg", "..\\SKU001.jpg"])
def test_image_path_escaping_the_folder_is_rejected(images, settings, path):
    data = csv_bytes(HISTORICAL_HEADER, [historical_row(image=path)])
    assert_rejected(run(data, images), settings, 2, "image_path", "leaves the images folder")


@pytest.mark.parametrize("path", ["/etc/hostname", "C:\\images\\SKU001.jpg"])
def test_absolute_image_path_is_rejected(images, settings, path):
    data = csv_bytes(HISTORICAL_HEADER, [historical_row(image=path)])
    assert_rejected(run(data, images), settings, 2, "image_path", "absolute path")


def test_symlink_leading_out_of_the_folder_is_rejected(images, settings, tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(image_bytes())
    os.symlink(outside, images / "link.jpg")
    data = csv_bytes(HISTORICAL_HEADER, [historical_row(image="link.jpg")])
    assert_rejected(run(data, images), settings, 2, "image_path", "leaves the images folder")


def test_file_that_is_not_an_image_is_rejected(images, settings):
    (images / "SKU001.jpg").write_bytes(b"<html>not a photo</html>")
    data = csv_bytes(HISTORICAL_HEADER, [historical_row()])
    assert_rejected(run(data, images), settings, 2, "image_path", "not an image")


def test_truncated_image_is_rejected(images, settings):
    whole = image_bytes(size=(200, 200), fmt="PNG")
    (images / "SKU001.jpg").write_bytes(whole[: len(whole) // 2])
    data = csv_bytes(HISTORICAL_HEADER, [historical_row()])
    assert_rejected(run(data, images), settings, 2, "image_path", "truncated or corrupt")


def test_decompression_bomb_is_rejected_before_decoding(images, settings):
    (images / "SKU001.jpg").write_bytes(png_header_only(30_000, 30_000))
    data = csv_bytes(HISTORICAL_HEADER, [historical_row()])
    assert_rejected(run(data, images), settings, 2, "image_path", "too large")


def test_pillow_decompression_bomb_warning_is_an_error(images, settings):
    # Above Pillow's MAX_IMAGE_PIXELS (89.5 M) but below twice that, Pillow only warns.
    settings.CATALOG_IMAGE_MAX_PIXELS = 500_000_000
    (images / "SKU001.jpg").write_bytes(png_header_only(10_000, 10_000))
    data = csv_bytes(HISTORICAL_HEADER, [historical_row()])
    assert_rejected(run(data, images), settings, 2, "image_path", "too large")


def test_oversized_image_file_is_rejected(images, settings):
    settings.CATALOG_IMAGE_MAX_BYTES = 100
    data = csv_bytes(HISTORICAL_HEADER, [historical_row()])
    assert_rejected(run(data, images), settings, 2, "image_path", "the limit is 100 bytes")


def test_oversized_csv_is_rejected(images, settings):
    settings.CATALOG_IMPORT_MAX_CSV_BYTES = 50
    assert_rejected(run(THREE_ROWS, images), settings, 0, "", "the limit is 50 bytes")


def test_one_bad_row_means_no_row_is_written(images, settings):
    data = (
        THREE_ROWS
        + csv_bytes(HISTORICAL_HEADER, [historical_row("SKU004", "SKU001.jpg", price="-1")]).split(
            b"\n", 1
        )[1]
    )
    result = run(data, images)
    assert [str(e) for e in result.errors] == ["line 5, column 'price': -1 is negative"]
    assert_rejected(result, settings, 5, "price", "negative")


# --- the management command -------------------------------------------------------------


def test_command_imports_and_prints_a_summary(images, tmp_path, capsys):
    csv_path = tmp_path / "products.csv"
    csv_path.write_bytes(THREE_ROWS)

    call_command("import_catalog", str(csv_path), "--images", str(images))

    assert "3 created, 0 updated, 0 unchanged, 0 failed" in capsys.readouterr().out
    assert Product.objects.count() == 3


def test_command_dry_run_writes_nothing(images, tmp_path, capsys):
    csv_path = tmp_path / "products.csv"
    csv_path.write_bytes(THREE_ROWS)

    call_command("import_catalog", str(csv_path), "--images", str(images), "--dry-run")

    assert "dry run" in capsys.readouterr().out
    assert Product.objects.count() == 0


def test_command_reports_each_error_and_fails(images, tmp_path, capsys):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_bytes(
        csv_bytes(
            HISTORICAL_HEADER, [historical_row(price="abc"), historical_row("SKU002", "../x.jpg")]
        )
    )

    with pytest.raises(CommandError, match="2 error"):
        call_command("import_catalog", str(csv_path), "--images", str(images))

    err = capsys.readouterr().err
    assert "bad.csv: line 2, column 'price': 'abc' is not a number" in err
    assert "bad.csv: line 3, column 'image_path'" in err
    assert Product.objects.count() == 0


def test_command_exits_non_zero_on_errors(tmp_path):
    csv_path = tmp_path / "empty.csv"
    csv_path.write_bytes(b"")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    done = subprocess.run(
        [sys.executable, "manage.py", "import_catalog", str(csv_path), "--images", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )

    assert done.returncode != 0
    assert "the file is empty" in done.stderr


class CountingImages(DirectoryImages):
    """The folder source, counting the photos it is asked to read."""

    def __init__(self, root):
        super().__init__(root)
        self.reads = 0

    def read(self, relative):
        self.reads += 1
        return super().read(relative)


def test_a_photo_named_by_many_rows_is_read_and_stored_once(images, settings):
    rows = [historical_row(f"SKU{n:03}", "SKU001.jpg") for n in range(12)]
    source = CountingImages(images)

    result = catalog_import(csv_data=csv_bytes(HISTORICAL_HEADER, rows), images=source)

    assert result.created == 12 and source.reads == 1
    assert len(stored_files(settings)) == 2  # the photo and its thumbnail
    assert len(set(Product.objects.values_list("image", flat=True))) == 1


def test_a_dry_run_stores_no_photo_and_a_failed_import_removes_those_it_stored(images, settings):
    good = [historical_row("SKU001", "SKU001.jpg"), historical_row("SKU002", "SKU002.jpg")]
    assert run(csv_bytes(HISTORICAL_HEADER, good), images, dry_run=True).ok
    assert stored_files(settings) == []

    bad = [*good, historical_row("SKU003", "SKU003.jpg", price="-1")]  # its error is found last
    assert not run(csv_bytes(HISTORICAL_HEADER, bad), images).ok
    assert stored_files(settings) == [] and Product.objects.count() == 0


def test_an_unknown_header_names_the_formats_there_are(images):
    result = run(csv_bytes(["title", "colour", "stock"], [["Red dress", "red", 3]]), images)

    [error] = result.errors
    assert (error.line, error.column) == (1, "")
    assert "matches none of the CSV formats" in error.message
    for fmt in (
        "historical catalog (product_id, image_path",
        "price; optional: name)",
        "new products (new_id",
        "prompt_hint; optional: name)",
        "sales update (sku, sales_count)",
    ):
        assert fmt in error.message


# --- one stream: each photo decoded once, embedded from that decode -------------------------


def flat_lays(folder: Path, count: int) -> Path:
    """Distinct photos: a coloured garment shape on a pale sweep."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        image = Image.new("RGB", (200, 250), (240, 238, 235))
        image.paste((40 * n % 256, 90, 200 - 30 * n % 200), (50, 40, 150, 210))
        image.save(folder / f"P{n:03}.jpg", quality=90)
    return folder


def flat_lay_csv(count: int) -> bytes:
    return csv_bytes(
        HISTORICAL_HEADER, [historical_row(f"P{n:03}", f"P{n:03}.jpg") for n in range(count)]
    )


def test_each_photo_is_decoded_once_for_its_image_thumbnail_and_vector(
    milvus, monkeypatch, tmp_path
):
    from catalog.indexing import products_sync
    from catalog.models import ImageEmbedding

    folder = flat_lays(tmp_path / "photos", 4)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))

    result = run(flat_lay_csv(4), folder)
    assert result.applied and ImageEmbedding.objects.count() == 4  # embedded during the import
    products_sync(product_ids=list(Product.objects.values_list("pk", flat=True)))

    assert len(opened) == 4
    assert set(Product.objects.values_list("index_state", flat=True)) == {"synced"}


def test_vectors_from_the_import_match_those_from_the_stored_photo(tmp_path):
    from catalog.embedders import get_embedder
    from catalog.models import ImageEmbedding

    folder = flat_lays(tmp_path / "photos", 3)
    assert run(flat_lay_csv(3), folder).applied
    embedder = get_embedder()
    for product in Product.objects.all():
        cached = np.frombuffer(
            ImageEmbedding.objects.get(image_sha256=product.image_sha256).vector, "<f4"
        )
        [from_file] = embedder.embed_images([product.image.read()])
        assert float(cached @ from_file) > 0.98


def test_a_large_import_embeds_in_a_process_pool_with_the_same_vectors(settings, tmp_path):
    from catalog.embedders import get_embedder
    from catalog.models import ImageEmbedding

    settings.CATALOG_IMPORT_POOL_MIN_ROWS, settings.CATALOG_IMPORT_PROCESSES = 1, 2
    folder = flat_lays(tmp_path / "photos", 5)
    assert run(flat_lay_csv(5), folder).applied
    settings.CATALOG_IMPORT_POOL_MIN_ROWS = 10_000
    inline = {
        p.image_sha256: get_embedder().embed_decoded([Image.open(p.image.path).convert("RGB")])[0]
        for p in Product.objects.all()
    }

    pooled = {
        row.image_sha256: np.frombuffer(row.vector, "<f4") for row in ImageEmbedding.objects.all()
    }
    assert pooled.keys() == inline.keys()
    for sha, vector in inline.items():
        assert float(pooled[sha] @ vector) > 0.98


def test_a_pooled_import_reports_the_same_errors_and_stores_nothing(images, settings):
    (images / "bad.jpg").write_bytes(b"<html>not a photo</html>")
    rows = [
        historical_row("SKU001", "SKU001.jpg"),
        historical_row("SKU002", "missing.jpg"),
        historical_row("SKU003", "bad.jpg"),
        historical_row("SKU004", "../SKU001.jpg"),
        historical_row("SKU005", "SKU001.jpg"),
        historical_row("SKU006", "SKU002.jpg", price="-1"),
    ]
    data = csv_bytes(HISTORICAL_HEADER, rows)
    settings.CATALOG_IMPORT_POOL_MIN_ROWS = 10_000
    in_process = [str(e) for e in run(data, images).errors]
    settings.CATALOG_IMPORT_POOL_MIN_ROWS, settings.CATALOG_IMPORT_PROCESSES = 1, 2

    pooled = run(data, images)

    assert [str(e) for e in pooled.errors] == in_process and len(in_process) == 4
    assert stored_files(settings) == [] and Product.objects.count() == 0


def test_a_pooled_import_prepares_each_photo_once_in_the_pool(monkeypatch, tmp_path, settings):
    import catalog.photo_work

    def not_here(*args):
        raise AssertionError("a photo was prepared in the import's own process")

    monkeypatch.setattr(catalog.photo_work, "image_prepare", not_here)  # the pool's is its own
    settings.CATALOG_IMPORT_POOL_MIN_ROWS, settings.CATALOG_IMPORT_PROCESSES = 1, 2
    folder = flat_lays(tmp_path / "photos", 40)
    rows = [historical_row(f"P{n:03}", f"P{n % 40:03}.jpg") for n in range(120)]
    source = CountingImages(folder)

    result = catalog_import(csv_data=csv_bytes(HISTORICAL_HEADER, rows), images=source)

    assert result.applied and result.created == 120 and source.reads == 40
    assert len(stored_files(settings)) == 80  # each photo and its thumbnail
    assert Product.objects.values("image").distinct().count() == 40


def test_a_dry_run_embeds_nothing(images):
    from catalog.models import ImageEmbedding

    assert run(THREE_ROWS, images, dry_run=True).ok
    assert ImageEmbedding.objects.count() == 0


def test_import_memory_stays_flat_in_the_number_of_rows(tmp_path, settings):
    import tracemalloc

    settings.CATALOG_IMPORT_POOL_MIN_ROWS = 10_000  # both sizes embed alike (in this process)

    def peak(count: int, start: int) -> int:
        folder = tmp_path / str(start)
        folder.mkdir()
        for n in range(count):
            (folder / f"P{start + n}.jpg").write_bytes(image_bytes((n % 250, start % 250, 90)))
        rows = [historical_row(f"P{start + n}", f"P{start + n}.jpg") for n in range(count)]
        data = csv_bytes(HISTORICAL_HEADER, rows)
        tracemalloc.start()
        assert run(data, folder, sync_index=False).applied
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    # Each size twice, the lower peak kept: once every few thousand rows the interpreter
    # reallocates its table of interned strings (pathlib interns each file name it parses), a
    # one-off block of several MB that tracemalloc counts while the table it replaced was never
    # traced. Two runs of a size cannot both hold one.
    large = min(peak(1200, 100_000), peak(1200, 300_000))
    small = min(peak(400, 200_000), peak(400, 400_000))
    per_row = (large - small) / 800
    # Measured about 730 B here: the result's plan of each row, each photo's hash and the
    # skus seen. It was 12 KB when every re-encoded image was held until the write, 1.3 KB
    # while the CSV was copied whole into a StringIO (4 bytes a character) and every stored
    # file's name was kept; any per-row model instance kept would add 2-3 KB more.
    assert per_row < 1024, per_row


def test_queries_per_row_stay_constant(tmp_path, django_assert_max_num_queries):
    folder = flat_lays(tmp_path / "photos", 60)
    data = csv_bytes(
        HISTORICAL_HEADER, [historical_row(f"P{n:04}", f"P{n % 60:03}.jpg") for n in range(1200)]
    )
    with django_assert_max_num_queries(60):  # 1,200 rows: chunks of 500 plan, write and embed
        assert run(data, folder).applied


def test_line_endings_and_quoted_line_breaks_read_as_before(images):
    """The reader takes the file a line at a time: CRLF, lone CR and line breaks inside quoted
    cells still read as one row each, and errors still name the right line."""
    rows = [
        historical_row("SKU001", "SKU001.jpg", description="Two\nlines"),
        historical_row("SKU002", "SKU002.jpg"),
        historical_row("SKU003", "SKU003.jpg", sales="x"),
    ]
    text = csv_bytes(HISTORICAL_HEADER, rows).decode()
    for ending in ("\r\n", "\r"):
        quoted = (
            text.replace('"Two\nlines"', '"Two\x00lines"')
            .replace("\n", ending)
            .replace("\x00", "\n")
        )
        result = run(quoted.encode(), images, dry_run=True)
        assert [(error.line, error.column) for error in result.errors] == [(5, "sales_count")]
        assert [row.sku for row in result.rows] == ["SKU001", "SKU002"]
