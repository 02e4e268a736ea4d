"""Retrieval and generation degrade clearly (issue 23, item 3): real Milvus Lite, the real
pipeline with the offline providers.

Every case ends the asset in a known state with its reason on the asset page: a category
with no other bestseller takes its style from a wider search, too few bestsellers are used
as they are, a catalog without sales fails saying so, and an index that cannot be searched
(dropped, empty, Milvus down) makes the image wait, counting no attempt, until it can.
"""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from dramatiq import Message
from PIL import Image, ImageDraw

from catalog.images import image_prepare
from catalog.indexing import get_index, index_check, index_rebuild, products_sync
from catalog.models import Product
from catalog.periodic import reconcile_index
from catalog.selectors import similar_bestsellers
from catalog.services import product_save
from catalog.vector_index import IndexNotReady, client
from generation import tasks
from generation.models import AssetEvent, AssetStatus, ChannelPreset, GeneratedAsset
from generation.pipeline import INDEX_RETRY_SECONDS, WaitingForIndex, asset_run
from generation.review import asset_regenerate
from generation.services import BatchRequest, batch_create
from tests.conftest import _drop_collections, free_port

pytestmark = pytest.mark.django_db


def product(sku: str, *, category: str, sales: int = 0, colour: str = "navy") -> Product:
    """A product whose photo has a shape on a background: the offline image generator's
    composite of a plain square would be blank, and be failed for that."""
    photo = Image.new("RGB", (96, 120), "white")
    ImageDraw.Draw(photo).rectangle((20, 20, 76, 100), fill=colour)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    return product_save(
        product=Product(sku=sku, category=category, color=colour, sales_count=sales),
        image=image_prepare(buffer.getvalue()),
    )


def request_image(new: Product, references: int = 3) -> GeneratedAsset:
    batch = batch_create(
        user=None,
        request=BatchRequest(
            [new], [ChannelPreset.objects.get(name="Storefront hero")], "0.5K", references
        ),
        estimated_cost=Decimal("0"),
    )
    return batch.assets.get()


def run(asset: GeneratedAsset) -> GeneratedAsset:
    asset_run(asset_id=asset.pk, worker="test")
    asset.refresh_from_db()
    return asset


def run_waiting(asset: GeneratedAsset) -> GeneratedAsset:
    """One delivery that finds the index unusable: the asset is sent again for later."""
    with pytest.raises(WaitingForIndex) as later:
        asset_run(asset_id=asset.pk, worker="test")
    assert later.value.delay == INDEX_RETRY_SECONDS
    asset.refresh_from_db()
    return asset


def asset_page(client, asset: GeneratedAsset) -> str:
    response = client.get(reverse("admin:generation_generatedasset_change", args=[asset.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def dresses(milvus):
    """Two dress bestsellers, indexed: the only sales in the catalog."""
    product("DRESS1", category="dress", sales=4000, colour="red")
    product("DRESS2", category="dress", sales=2500, colour="navy")


def test_a_product_alone_in_its_category_takes_its_style_from_a_wider_search(dresses, admin_client):
    # Before: "ValueError: cannot reshape array of size 0", failed after five attempts.
    hat = product("HAT1", category="hat")
    index_rebuild()

    asset = run(request_image(hat, references=2))

    assert asset.status == AssetStatus.IN_REVIEW, asset.failure_reason
    assert asset.attempts == 1
    assert {ref.product.sku for ref in asset.references.all()} == {"DRESS1", "DRESS2"}
    assert "wider search" in asset.retrieval_note and "'hat'" in asset.retrieval_note
    assert "'dress'" in asset.retrieval_note
    retrieved = AssetEvent.objects.get(asset=asset, to_status=AssetStatus.ANALYSING)
    assert retrieved.note == asset.retrieval_note  # the status log records why, too
    page = asset_page(admin_client, asset)
    assert 'id="references-note"' in page and "wider search" in page
    assert 'found by a wider search">dress</span>' in page  # each reference's category


def test_too_few_bestsellers_in_the_category_are_used_and_the_page_says_so(dresses, admin_client):
    product("HAT1", category="hat", sales=300)
    hat = product("HAT2", category="hat")
    index_rebuild()

    asset = run(request_image(hat, references=3))

    assert asset.status == AssetStatus.IN_REVIEW, asset.failure_reason
    assert [ref.product.sku for ref in asset.references.all()] == ["HAT1"]  # no dress
    assert "Only 1 of 3" in asset.retrieval_note and "lowered to 0" in asset.retrieval_note
    assert "wider search" not in asset.retrieval_note
    page = asset_page(admin_client, asset)
    assert "Only 1 of 3" in page and "found by a wider search" not in page


def test_a_catalog_without_sales_fails_the_image_at_once_saying_what_to_import(milvus):
    product("HAT1", category="hat")
    hat = product("HAT2", category="hat")
    index_rebuild()

    asset = run(request_image(hat))

    assert asset.status == AssetStatus.FAILED and asset.attempts == 1
    assert asset.failure_reason.startswith("No bestsellers to take the style from")
    assert "Import products with their sales" in asset.failure_reason


def test_a_dropped_collection_is_made_again_and_the_image_waits_for_the_reconcile(
    dresses, milvus, admin_client
):
    # Before: "collection ... does not exist", failed for good after five attempts.
    dress = product("NEWDRESS", category="dress")
    index_rebuild()
    _drop_collections(milvus)

    asset = run_waiting(request_image(dress))

    assert get_index().collection_name() is not None  # created again, empty
    assert asset.status == AssetStatus.RETRIEVING
    assert "The index is being rebuilt" in asset.last_error
    assert "Try again in a few minutes" in asset.last_error
    assert (asset.attempts, asset.rate_waits) == (1, 1)  # a wait, not a failed attempt
    assert asset.retry_at is not None and not asset.claimed_by

    for _ in range(6):  # more deliveries than GENERATION_MAX_ATTEMPTS, still waiting
        asset = run_waiting(asset)
    assert asset.status == AssetStatus.RETRIEVING
    assert "does not hold the 2 bestseller(s) of category 'dress'" in asset.last_error
    page = asset_page(admin_client, asset)
    assert 'id="references-waiting"' in page and "Waiting for the index" in page

    assert index_check(repair=True).repaired == 3  # the reconcile fills it
    asset = run(asset)
    assert asset.status == AssetStatus.IN_REVIEW, asset.failure_reason
    assert {ref.product.sku for ref in asset.references.all()} == {"DRESS1", "DRESS2"}
    assert asset.last_error == "" and "Only 2 of 3" in asset.retrieval_note


def test_an_empty_collection_makes_the_image_wait_until_the_products_are_synced(dresses):
    dress = product("NEWDRESS", category="dress")
    get_index().ensure()  # there, but nothing synced into it yet

    asset = run_waiting(request_image(dress, references=2))
    assert "does not hold the 2 bestseller(s)" in asset.last_error

    products_sync(product_ids=list(Product.objects.values_list("pk", flat=True)))
    assert run(asset).status == AssetStatus.IN_REVIEW


def test_a_product_not_yet_in_the_index_still_finds_its_bestsellers(dresses):
    index_rebuild()
    dress = product("NEWDRESS", category="dress")  # its own sync has not run

    asset = run(request_image(dress, references=2))

    assert asset.status == AssetStatus.IN_REVIEW, asset.failure_reason
    assert asset.references.count() == 2 and asset.retrieval_note == ""


def test_an_empty_search_answers_no_hits_without_numpy_errors(dresses):
    hat = product("HAT1", category="hat")
    index_rebuild()

    result = similar_bestsellers(product=hat, relax_to=0)

    assert result.hits == [] and result.widened_from is None


def test_the_index_behind_the_database_is_said_rather_than_no_bestsellers(dresses):
    dress = product("NEWDRESS", category="dress")
    get_index().ensure()

    with pytest.raises(IndexNotReady, match="does not hold the 2 bestseller"):
        similar_bestsellers(product=dress, relax_to=0, widen=True)


@pytest.fixture
def milvus_down(milvus, settings):
    """Milvus at an address where nothing answers; the fixture's value brings it back."""
    uri, timeout = settings.MILVUS_URI, settings.MILVUS_TIMEOUT
    settings.MILVUS_URI, settings.MILVUS_TIMEOUT = f"http://127.0.0.1:{free_port()}", 1

    def back():
        settings.MILVUS_URI, settings.MILVUS_TIMEOUT = uri, timeout

    yield back
    back()


def test_milvus_down_keeps_the_image_waiting_then_fails_it_for_a_regenerate(
    dresses, settings, milvus_down, django_user_model
):
    # Before: failed for good after five attempts, "Milvus ... is unavailable".
    dress = product("NEWDRESS", category="dress")
    asset = request_image(dress)
    for _ in range(settings.GENERATION_MAX_ATTEMPTS + 1):
        asset = run_waiting(asset)
    assert asset.status == AssetStatus.RETRIEVING
    assert asset.last_error.startswith("Waiting for the index")
    assert "is unavailable" in asset.last_error

    # An hour later (GENERATION_INDEX_WAIT_SECONDS) it stops waiting, saying why.
    AssetEvent.objects.filter(asset=asset, to_status=AssetStatus.RETRIEVING).update(
        created_at=timezone.now() - timedelta(seconds=settings.GENERATION_INDEX_WAIT_SECONDS)
    )
    AssetEvent.objects.create(  # the sweeper sending a lost message again: not a new wait
        asset=asset,
        from_status=AssetStatus.RETRIEVING,
        to_status=AssetStatus.RETRIEVING,
        worker="sweeper",
        note="its message was lost: sent again",
    )
    asset = run(asset)
    assert asset.status == AssetStatus.FAILED
    assert asset.failure_reason.startswith("The index could not be searched for 60 minutes.")
    assert "server unavailable. Regenerate this image once the index" in asset.failure_reason

    # Milvus back: the failed image is regenerated and made.
    milvus_down()  # back
    index_rebuild()
    reviewer = django_user_model.objects.create_superuser("lead", "lead@example.com", "pw")
    new = asset_regenerate(asset=asset, user=reviewer, feedback="the index is back")
    assert run(new).status == AssetStatus.IN_REVIEW


def test_a_missing_collection_queues_the_reconcile_that_fills_it(
    dresses, milvus, broker, django_capture_on_commit_callbacks
):
    dress = product("NEWDRESS", category="dress")
    index_rebuild()
    _drop_collections(milvus)
    broker.flush_all()

    with django_capture_on_commit_callbacks(execute=True):
        asset = run_waiting(request_image(dress, references=2))

    queued = [Message.decode(data) for data in broker.queues["index"].queue]
    assert [message.actor_name for message in queued] == ["reconcile_index"]
    reconcile_index.fn()  # what the worker does with it
    assert run(asset).status == AssetStatus.IN_REVIEW


def test_the_actor_sends_a_waiting_image_again_for_later(
    dresses, milvus, broker, django_capture_on_commit_callbacks
):
    dress = product("NEWDRESS", category="dress")
    asset = request_image(dress)
    broker.flush_all()
    _drop_collections(milvus)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.generate_asset_now.fn(asset.pk)  # no Retry raised: a fresh message instead

    delayed = broker.queues["generation-interactive.DQ"]
    assert delayed.qsize() == 1
    asset.refresh_from_db()
    assert asset.status == AssetStatus.RETRIEVING and asset.message_id


def test_a_released_collection_is_loaded_again_and_searched(dresses):
    # As after a Milvus restart, or while a collection is still being loaded.
    dress = product("NEWDRESS", category="dress")
    index_rebuild()
    name = get_index().collection_name()
    client().release_collection(name)  # a search now answers "call load() before search"

    asset = run(request_image(dress, references=2))

    assert asset.status == AssetStatus.IN_REVIEW, asset.failure_reason
    assert asset.references.count() == 2 and asset.attempts == 1
    assert client().get_load_state(name)["state"].name == "Loaded"
