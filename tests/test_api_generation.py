"""/api/v1/generation (estimate, request with an Idempotency-Key) and /api/v1/batches/{id}
through the HTTP interface, under the request page's rules and the owner's permission."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User

from core.api_tokens import api_token_create
from core.models import ApiScope
from generation.models import AssetStatus, GenerationBatch
from tests.factories import make_product
from tests.test_api_products import assert_problem, call, fresh_rate_counts  # noqa: F401
from tests.test_pipeline import catalog, sample_dir  # noqa: F401 - shared fixtures
from tests.test_review import merchandiser, reviewer  # noqa: F401

pytestmark = pytest.mark.django_db

WRITE = ApiScope.GENERATION_WRITE
HERO, BANNER = "Storefront hero", "Ultra-wide banner"


def token_for(user, *scopes) -> str:
    return api_token_create(name=f"{user} pim", owner=user, scopes=list(scopes))[1]


def post(client, path, secret, body, **extra):
    return call(client, "post", path, secret, body, **extra)


def request_body(**fields):
    return {"skus": ["NEW1", "NEW2"], "presets": [HERO, BANNER], **fields}


@pytest.fixture
def products():
    return [make_product("NEW1", price=49), make_product("NEW2", price=59)]


def test_the_estimate_counts_every_image_and_queues_nothing(client, merchandiser, products):  # noqa: F811
    secret = token_for(merchandiser, WRITE)
    response = post(client, "/generation/estimate", secret, request_body(variants=2))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["images"] == 2 * 2 * 2
    assert body["offline"] is True and body["total"] == "0"  # the offline providers in tests
    assert not GenerationBatch.objects.exists()


def test_a_request_queues_a_batch_and_logs_it_under_the_token(
    client,
    merchandiser,  # noqa: F811
    products,
    broker,
):
    secret = token_for(merchandiser, WRITE)
    response = post(client, "/generation/requests", secret, request_body(size_tier="0.5K"))
    assert response.status_code == 201, response.content
    body = response.json()
    batch = GenerationBatch.objects.get(pk=body["id"])
    assert batch.requested_by == merchandiser and batch.size_tier == "0.5K"
    assert body["total"] == 4 and body["presets"] == sorted([HERO, BANNER])
    assert body["assets"].endswith(f"/api/v1/assets?batch={batch.pk}")
    entry = LogEntry.objects.get(object_id=str(batch.pk))
    assert entry.action_flag == ADDITION and "via API token “merch pim”" in entry.change_message

    status = call(client, "get", f"/batches/{batch.pk}", secret)
    assert status.status_code == 200, status.content
    progress = status.json()
    assert progress["total"] == 4 and progress["by_status"][AssetStatus.QUEUED] == 4
    assert progress["finished"] == 0


def test_the_same_idempotency_key_answers_the_same_batch(client, merchandiser, products, broker):  # noqa: F811
    secret = token_for(merchandiser, WRITE)
    first = post(
        client, "/generation/requests", secret, request_body(), HTTP_IDEMPOTENCY_KEY="order-7"
    )
    again = post(
        client, "/generation/requests", secret, request_body(), HTTP_IDEMPOTENCY_KEY="order-7"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = post(client, "/generation/requests", secret, request_body())
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # Another token's same key is its own request.
    elsewhere = post(
        client,
        "/generation/requests",
        token_for(merchandiser, WRITE),
        request_body(),
        HTTP_IDEMPOTENCY_KEY="order-7",
    )
    assert elsewhere.json()["id"] not in (first.json()["id"], other.json()["id"])
    assert GenerationBatch.objects.count() == 3


def test_bad_requests_name_each_field(client, merchandiser, products, settings):  # noqa: F811
    secret = token_for(merchandiser, WRITE)
    make_product("NOPHOTO").image.delete()
    body = request_body(skus=["NEW1", "GHOST", "NOPHOTO"], presets=[HERO, "Nowhere"])
    problem = assert_problem(post(client, "/generation/requests", secret, body), 422)
    fields = [error["field"] for error in problem["errors"]]
    assert fields == ["skus[1]", "skus[2]", "presets[1]"]

    settings.GENERATION_MAX_REFERENCES = 3
    problem = assert_problem(
        post(client, "/generation/estimate", secret, request_body(reference_count=9)), 422
    )
    assert problem["errors"][0]["field"] == "reference_count"
    problem = assert_problem(
        post(client, "/generation/estimate", secret, request_body(variants=5)), 422
    )
    assert problem["errors"] == [{"field": "variants", "reason": "Ask for 1 to 4 variants."}]
    assert_problem(post(client, "/generation/estimate", secret, request_body(size_tier="8K")), 422)
    assert not GenerationBatch.objects.exists()


def test_a_price_in_the_image_needs_a_price_as_on_the_page(client, merchandiser):  # noqa: F811
    from generation.models import ChannelPreset

    ChannelPreset.objects.filter(name=HERO).update(overlay_text="{price}")
    make_product("FREE1")
    secret = token_for(merchandiser, WRITE)
    body = {"skus": ["FREE1"], "presets": [HERO]}
    problem = assert_problem(post(client, "/generation/requests", secret, body), 422)
    assert problem["errors"][0]["field"] == "presets" and "FREE1" in problem["errors"][0]["reason"]


def test_generation_is_refused_without_the_scope_or_the_owners_permission(
    client,
    merchandiser,  # noqa: F811
    reviewer,  # noqa: F811
    products,
):
    wrong = token_for(merchandiser, ApiScope.ASSETS_READ)
    for path in ("/generation/estimate", "/generation/requests"):
        problem = assert_problem(post(client, path, wrong, request_body()), 403)
        assert problem["type"].endswith("/missing-scope")
    problem = assert_problem(
        post(client, "/generation/requests", token_for(reviewer, WRITE), request_body()), 403
    )
    assert "request_promos" in problem["detail"]
    nobody = token_for(User.objects.create_user("nobody"), WRITE)
    batch = GenerationBatch.objects.create(size_tier="1K")
    assert_problem(call(client, "get", f"/batches/{batch.pk}", nobody), 403)
    assert_problem(call(client, "get", "/batches/99999", token_for(merchandiser, WRITE)), 404)
    assert not GenerationBatch.objects.exclude(pk=batch.pk).exists()


def run_queued(broker, worker) -> None:
    """Let the real worker finish what was queued: the index sync, then the images."""
    for queue in ("index", "generation-interactive", "generation"):
        broker.join(queue)
    worker.join()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_product_created_requested_approved_and_published_by_api_is_announced_signed(
    client,
    catalog,  # noqa: F811
    broker,
    worker,
    settings,
):
    """The whole way through the API: a product created and its images requested by the
    PIM's token, made by a real worker with the offline providers, approved and published by
    a reviewer's token (not the requester's: four-eyes), served at the public URL the API
    gives, and announced by a signed `asset.published` webhook to a real local receiver."""
    from hooks.endpoints import endpoint_create
    from tests.test_api_products import PHOTO
    from tests.test_review import user_in
    from tests.webhook_receiver import WebhookReceiver

    settings.REVIEW_FOUR_EYES = True
    settings.PUBLISH_OFFLINE_PREVIEWS = True  # the offline providers make previews
    pim = token_for(
        user_in("Merchandiser", "merch"), ApiScope.PRODUCTS_WRITE, WRITE, ApiScope.ASSETS_READ
    )
    product = {"category": "dress", "lifecycle": "new", "price": "49.90", "image": PHOTO}
    response = call(client, "put", "/products/API-E2E", pim, product)
    assert response.status_code == 201, response.content
    run_queued(broker, worker)  # the new product's index sync

    body = {"skus": ["API-E2E"], "presets": [HERO], "size_tier": "0.5K", "reference_count": 2}
    response = post(client, "/generation/requests", pim, body, HTTP_IDEMPOTENCY_KEY="e2e-1")
    assert response.status_code == 201, response.content
    batch_id = response.json()["id"]
    run_queued(broker, worker)

    progress = call(client, "get", f"/batches/{batch_id}", pim).json()
    assert (progress["total"], progress["finished"], progress["failed"]) == (1, 1, 0), progress
    (asset,) = call(client, "get", f"/assets?batch={batch_id}", pim).json()["items"]
    assert asset["status"] == "in_review" and asset["sku"] == "API-E2E"
    assert call(client, "get", f"/assets/{asset['id']}/image", pim).status_code == 200

    reviewer_token = token_for(user_in("Reviewer", "rev"), ApiScope.ASSETS_DECIDE)
    refused = post(
        client,
        f"/assets/{asset['id']}/approve",
        token_for(User.objects.get(username="merch"), ApiScope.ASSETS_DECIDE),
        {},
    )
    assert refused.status_code == 403  # a merchandiser may not review at all
    with WebhookReceiver() as receiver:
        endpoint, receiver.secret = endpoint_create(url=receiver.url, events=["asset.published"])
        assert post(client, f"/assets/{asset['id']}/approve", reviewer_token, {}).status_code == 200
        published = post(client, f"/assets/{asset['id']}/publish", reviewer_token, {})
        assert published.status_code == 200, published.content
        broker.join("webhooks")
        (received,) = receiver.wait_for(1)
    assert received.verified, received.error
    event = received.event
    assert event["type"] == "asset.published" and event["data"]["sku"] == "API-E2E"
    assert event["data"]["id"] == asset["id"] and event["data"]["offline"] is True
    url = published.json()["published_url"]
    assert client.get(url).status_code == 200
