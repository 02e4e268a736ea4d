"""`manage.py explain_request` (issue 24, item 4): the references a request would use now,
each with why, on the sample catalog in Milvus Lite; the same choice the pipeline makes."""

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from catalog.indexing import index_rebuild
from catalog.models import Product
from generation.models import AssetStatus, ChannelPreset
from generation.pipeline import asset_run
from generation.services import BatchRequest, batch_create
from tests.factories import make_product, sample_catalog_import

pytestmark = pytest.mark.django_db

PRESET = "Storefront hero"


@pytest.fixture
def catalog(milvus, sample_catalog):
    """The sample catalog imported and indexed."""
    sample_catalog_import(sample_catalog)
    index_rebuild()


def explain(sku: str, *args: str) -> str:
    out = io.StringIO()
    call_command("explain_request", sku, "--preset", PRESET, *args, stdout=out)
    return out.getvalue()


def reference_rows(output: str) -> list[list[str]]:
    """The table's rows, split into cells: '#', 'bestseller', 'photo', sku, category, sales,
    rank, 'of', count, fused, photo rank, words rank."""
    return [line.split() for line in output.splitlines() if line[:1].isdigit()]


def expected_sales_rank(sku: str) -> str:
    """Worked out apart from the app: the catalog's category sorted by sales."""
    product = Product.objects.get(sku=sku)
    sales = [
        p.sales_count for p in Product.objects.filter(category=product.category) if p.sales_count
    ]
    better = sum(1 for s in sales if s > product.sales_count)
    return f"{better + 1} of {len(sales)}"


def test_it_prints_the_references_the_pipeline_then_uses(catalog):
    new = Product.objects.awaiting_promos().order_by("sku").first()

    output = explain(new.sku, "--references", "3")

    rows = reference_rows(output)
    assert len(rows) == 3
    assert f"A request for {new.sku} ({new.category}" in output and repr(PRESET) in output
    # The same request made for real records the same references in the same order.
    asset = batch_create(
        user=None,
        request=BatchRequest([new], [ChannelPreset.objects.get(name=PRESET)], "0.5K", 3),
        estimated_cost=Decimal("0"),
    ).assets.get()
    asset_run(asset_id=asset.pk, worker="test")
    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW, asset.failure_reason
    recorded = list(asset.references.select_related("product").order_by("rank"))
    assert [row[3] for row in rows] == [ref.product.sku for ref in recorded]
    for row, ref in zip(rows, recorded, strict=True):
        assert row[1:3] == ["bestseller", "photo"]
        assert row[4] == ref.product.category == new.category
        assert row[5] == f"{ref.product.sales_count:,}"
        assert " ".join(row[6:9]) == expected_sales_rank(ref.product.sku)
        assert float(row[9]) == pytest.approx(ref.score, abs=1e-5)
        assert row[10] == str(ref.dense_rank or "-")
        assert row[11] == str(ref.sparse_rank or "-")


def test_a_wider_search_is_explained_with_its_note(catalog):
    hat = make_product("HAT1", category="hat")
    index_rebuild()

    output = explain(hat.sku, "--references", "2")

    rows = reference_rows(output)
    assert len(rows) == 2
    assert all(row[4] != "hat" for row in rows)  # each reference's own category is shown
    assert "wider search" in output


def test_a_catalog_without_sales_says_why_there_is_nothing(milvus):
    make_product("HAT1", category="hat")
    hat = make_product("HAT2", category="hat")
    index_rebuild()

    with pytest.raises(CommandError, match="No bestsellers to take the style from"):
        explain(hat.sku)


def test_an_unknown_preset_lists_the_active_ones(db):
    make_product("DRESS1")

    with pytest.raises(CommandError, match="Unknown or inactive preset 'Nope'") as error:
        call_command("explain_request", "DRESS1", "--preset", "Nope", stdout=io.StringIO())
    assert repr(PRESET) in str(error.value)


def test_an_unknown_sku_is_named(db):
    with pytest.raises(CommandError, match="Unknown SKU 'NOPE'"):
        explain("NOPE")


def test_fewer_than_one_reference_is_refused(db):
    make_product("DRESS1")

    with pytest.raises(CommandError, match="--references must be at least 1"):
        explain("DRESS1", "--references", "0")
