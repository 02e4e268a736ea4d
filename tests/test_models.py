from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from catalog.models import Product
from tests.factories import make_product

pytestmark = pytest.mark.django_db


def test_bestseller_means_more_sales_than_the_threshold(settings):
    settings.CATALOG_BESTSELLER_MIN_SALES = 1500
    at_threshold = make_product("AT", sales_count=1500)
    above = make_product("ABOVE", sales_count=1501)

    assert not at_threshold.is_bestseller and above.is_bestseller
    assert list(Product.objects.bestsellers()) == [above]


def test_new_products_await_promos_and_historical_ones_do_not():
    new = make_product("NEW001", lifecycle=Product.Lifecycle.NEW)
    make_product("SKU001", lifecycle=Product.Lifecycle.HISTORICAL)

    assert list(Product.objects.awaiting_promos()) == [new]


def test_negative_price_is_refused_by_the_database():
    product = make_product("SKU001")
    product.price = Decimal("-1.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        product.save()


def test_unknown_lifecycle_is_refused_by_the_database():
    product = make_product("SKU001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(lifecycle="archived")


@pytest.mark.parametrize("sku", ["../x", "", "-lead", "has space"])
def test_sku_with_unsafe_characters_is_invalid(sku):
    product = make_product("SKU001")
    product.sku = sku
    with pytest.raises(ValidationError):
        product.full_clean()


def test_saving_a_product_with_a_photo_stores_image_and_thumbnail():
    product = make_product("SKU001")

    assert product.image.storage.exists(product.image.name)
    assert product.thumbnail.storage.exists(product.thumbnail.name)
    assert product.image.name.endswith(f"{product.image_sha256}.jpg")
    assert product.sales_updated_at is not None
    assert str(product) == "SKU001"
