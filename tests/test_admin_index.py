"""The vector index in the admin: state column, similar-bestsellers panel, status page."""

import pytest
from django.urls import reverse

from catalog.indexing import index_check, products_sync
from catalog.models import IndexRun, IndexState, Product
from tests.factories import make_product

pytestmark = pytest.mark.django_db
STATUS = reverse("admin:catalog_product_index_status")


def test_changelist_shows_each_products_index_state_and_error(admin_client):
    make_product("OK1")
    failed = make_product("BAD1", color="red")
    Product.objects.filter(pk=failed.pk).update(
        index_state=IndexState.FAILED, index_error="Milvus upsert failed: disk full"
    )

    html = admin_client.get(reverse("admin:catalog_product_changelist")).content.decode()

    assert "Pending" in html and "Failed" in html
    assert "Milvus upsert failed: disk full" in html
    filtered = admin_client.get(
        reverse("admin:catalog_product_changelist") + "?index_state__exact=failed"
    )
    assert list(filtered.context["cl"].result_list) == [failed]


def test_product_page_shows_similar_bestsellers_with_scores_and_leg_ranks(admin_client, milvus):
    twin = make_product("TWIN", color="navy", sales_count=5000)
    make_product("OTHER", color="red", sales_count=3000)
    make_product("SLOW", color="navy", sales_count=10)
    query = make_product("NEW1", color="navy")
    products_sync(product_ids=list(Product.objects.values_list("pk", flat=True)))

    response = admin_client.get(reverse("admin:catalog_product_change", args=[query.pk]))

    html = response.content.decode()
    assert "Similar bestsellers, found by photo and description" in html
    assert html.index("TWIN") < html.index("OTHER")
    assert "SLOW" not in html
    assert twin.thumbnail.url in html
    assert "Only 2 of 3 requested bestsellers qualify" in html


def test_product_page_still_opens_when_milvus_is_down(admin_client, settings):
    settings.MILVUS_URI = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.MILVUS_TIMEOUT = 1
    product = make_product("NEW1")

    response = admin_client.get(reverse("admin:catalog_product_change", args=[product.pk]))

    assert response.status_code == 200
    assert "Similar bestsellers are unavailable" in response.content.decode()


def test_index_status_page_compares_milvus_with_the_database(admin_client, milvus):
    products_sync(product_ids=[make_product("A1").pk])
    for sku in ("R1", "R2"):  # red photos, and "red" in their colour column
        Product.objects.filter(pk=make_product(sku, color="red").pk).update(color="red")
    index_check(repair=True)  # also measures the colour words of an index filled by syncs
    make_product("B1", color="red")

    response = admin_client.get(STATUS)

    status = response.context["status"]
    assert status["rows"] == 3 and status["products"] == 4
    assert status["collection"].startswith(status["alias"])
    assert status["embedder"] == "offline_v3"
    html = response.content.decode()
    assert "Rows in Milvus" in html and "version 1" in html
    assert "1 of the catalog's colour values, from the photos of 2 products" in html
    assert html.index("2 products") < html.index(": red</td>")


def test_index_status_page_shows_the_last_milvus_figures_and_their_age_when_milvus_is_late(
    admin_client, milvus, settings
):
    products_sync(product_ids=[make_product("A1").pk])
    first = admin_client.get(STATUS)
    assert "figures_late" not in first.context["status"]
    assert 'Milvus figures read</th><td id="index-figures-age">just now' in first.content.decode()
    settings.INDEX_STATUS_MILVUS_WAIT_MS = 0  # no Milvus answers in no time

    late = admin_client.get(STATUS)

    status = late.context["status"]
    assert status["figures_late"] and "error" not in status
    assert (status["rows"], status["figures_at"]) == (
        first.context["status"]["rows"],
        first.context["status"]["figures_at"],
    )
    assert "Milvus did not answer within 0 ms, busy with writes" in late.content.decode()


def test_index_status_buttons_queue_the_reconcile(
    admin_client, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(STATUS, {"run": "reconcile"})
    assert response.status_code == 302
    assert broker.queues["index"].qsize() == 1


def test_resync_action_queues_the_selected_products(
    admin_client, broker, django_capture_on_commit_callbacks
):
    product = make_product("A1")
    Product.objects.filter(pk=product.pk).update(index_state=IndexState.FAILED)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:catalog_product_changelist"),
            {"action": "resync_index", "_selected_action": [product.pk]},
        )

    assert Product.objects.get(pk=product.pk).index_state == IndexState.PENDING
    assert broker.queues["index"].qsize() == 1
    assert not IndexRun.objects.exists()
