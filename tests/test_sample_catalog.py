"""The demo catalog: exact file formats, the sales spread and twins the retrieval demo relies on,
and photos that are deterministic and visually tell garments apart."""

import csv
import io
import itertools
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from demo import sample

THRESHOLD = 1500  # a product is a bestseller when sales_count > THRESHOLD


@pytest.fixture
def catalog_dir(sample_catalog) -> Path:
    """The session's sample catalog (drawing 44 photos takes a few seconds)."""
    return sample_catalog.directory


@pytest.fixture(scope="module")
def command_run(tmp_path_factory) -> tuple[Path, str]:
    """The management command, run into a second folder: the directory and what it printed."""
    directory = tmp_path_factory.mktemp("command") / "demo"
    out = io.StringIO()
    call_command("make_sample_catalog", str(directory), stdout=out)
    return directory, out.getvalue()


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def all_files(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def thumbnail(path: Path) -> np.ndarray:
    """A 16×20 RGB summary: colour and silhouette survive, pattern details and jitter blur out."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((16, 20), Image.Resampling.BOX), np.float32)


def main_colour(product) -> str:
    return product.color.partition(" and ")[0]


def test_sample_data_is_built_around_the_configured_bestseller_threshold(settings):
    assert settings.CATALOG_BESTSELLER_MIN_SALES == THRESHOLD


def test_sample_catalog_is_byte_identical_across_runs(catalog_dir, command_run):
    """The second run is the management command's, so it also proves the command's output."""
    first, second = all_files(catalog_dir), all_files(command_run[0])
    assert len(first) == 40 + 4 + 5  # photos, three CSV files and two ZIP files
    assert first.keys() == second.keys()
    changed = [name for name in first if first[name] != second[name]]
    assert changed == []


def test_csv_headers_are_exact(catalog_dir):
    expected = {
        "products.csv": "product_id,image_path,category,color,style,season,sales_count,description,price",
        "new_products.csv": "new_id,image_path,category,style,season,prompt_hint,name",
        "sales_update.csv": "sku,sales_count",
    }
    for name, header in expected.items():
        data = (catalog_dir / name).read_bytes()
        assert data.decode("utf-8").split("\n")[0] == header
        assert b"\r" not in data  # one line ending throughout


def test_historical_and_new_rows_are_complete(catalog_dir):
    products = read_rows(catalog_dir / "products.csv")
    new = read_rows(catalog_dir / "new_products.csv")
    assert [row["product_id"] for row in products] == [f"SKU{n:03}" for n in range(1, 41)]
    assert [row["new_id"] for row in new] == ["NEW001", "NEW002", "NEW003", "NEW004"]
    assert [row["name"] for row in new] == [
        "Sky blue and light grey knit set",
        "Sage green floral maxi dress",
        "Camel knit turtleneck dress",
        "Dark grey geometric cowl top",
    ]
    categories = {row["category"] for row in products}
    assert 5 <= len(categories) <= 6
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", category) for category in categories)
    for row in products:
        assert row["image_path"] == f"{row['product_id']}.jpg"
        assert (catalog_dir / "images" / row["image_path"]).is_file()
        assert row["season"] in {"spring", "summer", "autumn", "winter"}
        assert re.fullmatch(r"\d+\.\d\d", row["price"]) and 19 <= float(row["price"]) <= 190
        assert 12 <= len(row["description"].split()) <= 25, row["description"]
        assert row["color"] and row["style"]
    for row in new:
        assert row["category"] in categories
        assert row["image_path"] == f"{row['new_id']}.jpg"
        assert (catalog_dir / "new_products" / row["image_path"]).is_file()
        assert row["style"] and row["season"] and row["prompt_hint"]


def test_sales_counts_straddle_the_bestseller_threshold(catalog_dir):
    sales = [int(row["sales_count"]) for row in read_rows(catalog_dir / "products.csv")]
    bestsellers = [count for count in sales if count > THRESHOLD]
    assert 0.35 <= len(bestsellers) / len(sales) <= 0.65
    assert sales.count(THRESHOLD) == 1  # at the threshold and so not a bestseller
    assert sum(1400 <= count < THRESHOLD for count in sales) >= 3
    assert min(sales) <= 100 and max(sales) >= 8000
    skus = {f"SKU{n:03}" for n in range(1, 41)}
    updates = read_rows(catalog_dir / "sales_update.csv")
    assert len(updates) >= 3
    assert all(row["sku"] in skus and int(row["sales_count"]) >= 0 for row in updates)


def test_each_new_products_category_has_bestseller_twins_and_contrasts(catalog_dir):
    sales = {
        row["product_id"]: int(row["sales_count"])
        for row in read_rows(catalog_dir / "products.csv")
    }
    for new in sample.NEW_PRODUCTS:
        same_category = [p for p in sample.HISTORICAL if p.category == new.category]
        bestsellers = [p for p in same_category if sales[p.sku] > THRESHOLD]
        assert len(same_category) >= 5 and len(bestsellers) >= 3, new.new_id
        assert any(
            p.garment == new.garment and main_colour(p) == main_colour(new) for p in bestsellers
        ), f"{new.new_id} has no bestseller twin"
        assert any(
            p.garment != new.garment and main_colour(p) != main_colour(new) for p in bestsellers
        ), f"{new.new_id} has no contrasting bestseller"


def test_some_new_product_has_a_twin_that_is_not_a_bestseller():
    """So that retrieval which forgets the sales filter returns a wrong product."""
    twins_below = [
        p
        for new in sample.NEW_PRODUCTS
        for p in sample.HISTORICAL
        if (p.garment, p.color) == (new.garment, new.color) and p.sales_count <= THRESHOLD
    ]
    assert twins_below
    assert THRESHOLD in {p.sales_count for p in twins_below}  # catches `>=` used for `>`


def test_every_image_is_a_512_by_640_rgb_jpeg(catalog_dir):
    paths = sorted((catalog_dir / "images").iterdir()) + sorted(
        (catalog_dir / "new_products").iterdir()
    )
    assert len(paths) == 44
    for path in paths:
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", (512, 640), "RGB")
            image.load()


def test_garment_types_have_clearly_different_silhouettes():
    """Same colour, pattern and seed, so only the silhouette differs between the pictures."""
    pictures = {
        garment: np.asarray(
            sample.draw_flatlay(garment, (90, 110, 150), "solid", seed="shape"), np.float32
        )
        for garment in sample.GARMENTS
    }
    for a, b in itertools.combinations(pictures, 2):
        difference = float(np.abs(pictures[a] - pictures[b]).mean())
        assert difference > 6, f"{a} and {b} differ by only {difference:.1f}"


def test_twins_are_the_nearest_pictures_to_each_new_product(catalog_dir):
    historical = {
        p.sku: thumbnail(catalog_dir / "images" / f"{p.sku}.jpg") for p in sample.HISTORICAL
    }
    by_sku = {p.sku: p for p in sample.HISTORICAL}
    for new in sample.NEW_PRODUCTS:
        picture = thumbnail(catalog_dir / "new_products" / f"{new.new_id}.jpg")
        distance = {sku: float(np.abs(picture - other).mean()) for sku, other in historical.items()}
        nearest = by_sku[min(distance, key=distance.get)]
        assert (nearest.garment, nearest.color) == (new.garment, new.color), new.new_id
        twins = [
            sku for sku, p in by_sku.items() if (p.garment, p.color) == (new.garment, new.color)
        ]
        contrasts = [
            sku
            for sku, p in by_sku.items()
            if p.category == new.category
            and p.garment != new.garment
            and main_colour(p) != main_colour(new)
        ]
        assert max(distance[s] for s in twins) < min(distance[s] for s in contrasts), new.new_id


def test_photos_are_deterministic_per_seed_but_twins_are_not_identical():
    args = ("maxi_dress", (163, 190, 150), "floral")
    assert (
        sample.draw_flatlay(*args, seed="a").tobytes()
        == sample.draw_flatlay(*args, seed="a").tobytes()
    )
    assert (
        sample.draw_flatlay(*args, seed="a").tobytes()
        != sample.draw_flatlay(*args, seed="b").tobytes()
    )
    small = sample.draw_flatlay("tshirt", (190, 36, 44), "solid", seed="x", size=(128, 160))
    assert small.size == (128, 160)
    with pytest.raises(ValueError, match="unknown garment"):
        sample.draw_flatlay("poncho", (0, 0, 0), "solid", seed="x")


def test_zip_archives_hold_exactly_the_images_at_their_root(catalog_dir):
    for archive_name, folder in (("images.zip", "images"), ("new_products.zip", "new_products")):
        with zipfile.ZipFile(catalog_dir / archive_name) as archive:
            assert archive.testzip() is None
            contents = {name: archive.read(name) for name in archive.namelist()}
        on_disk = {path.name: path.read_bytes() for path in (catalog_dir / folder).iterdir()}
        assert sorted(contents) == sorted(on_disk)
        assert all("/" not in name for name in contents)
        assert contents == on_disk


def test_make_sample_catalog_command_reports_what_it_wrote(command_run):
    demo, output = command_run
    for name in (
        "products.csv",
        "new_products.csv",
        "sales_update.csv",
        "images.zip",
        "new_products.zip",
        "images/SKU040.jpg",
        "new_products/NEW004.jpg",
    ):
        assert (demo / name).is_file(), name
    assert "40 historical products" in output and "4 new products" in output
    assert "5 sales updates" in output
    assert str(demo / "products.csv") in output and str(demo / "images.zip") in output
