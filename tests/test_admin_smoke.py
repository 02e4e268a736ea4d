"""Smoke test: every admin page renders for a superuser, with data in every state.

The registered ModelAdmins are read from `admin.site._registry` when the tests are collected,
so a newly registered model gets its changelist, add, change, history and delete pages
rendered here without touching this file (its change page needs one object in `admin_data`,
and the test says so if there is none). The custom pages (import, index status, promo
request, progress endpoint, intermediate action pages) are listed by hand below.

The data is built through the ORM in one fixture, not by the pipeline: products in both
lifecycles and every index state (and one without a photo), a free batch (offline, $0), a paid
batch, an empty batch, and generated assets in every AssetStatus with real PNG files,
references and events. Milvus points at an address where nothing listens (the pages must say
so and still render); one index status test uses Milvus Lite instead.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogImport, IndexRun, IndexState, Product
from catalog.sparse import vectorizer_fit
from core.api_tokens import api_token_create, api_token_revoke
from core.models import ProviderCall, SpendReconcile
from core.spending import spend_book, spend_reserve
from generation.feed_tokens import feed_token_create, feed_token_revoke
from generation.models import (
    AssetEvent,
    AssetReference,
    AssetStatus,
    ChannelPreset,
    FeedToken,
    GeneratedAsset,
    GenerationBatch,
)
from hooks.endpoints import endpoint_create, endpoint_disable
from hooks.events import product_payload, webhooks_emit
from hooks.models import EventType, WebhookAttempt, WebhookDelivery
from performance.models import ChannelDay, PerformanceImport
from tests.csp import assert_strict_csp
from tests.factories import image_bytes, make_product, use_providers

pytestmark = pytest.mark.django_db

HERO, MARKETPLACE = "Storefront hero", "Marketplace main image"  # seeded by a migration
ASSET = "generation.generatedasset"
BATCH = "generation.generationbatch"
PRODUCT = "catalog.product"
FEED_TOKEN = "generation.feedtoken"
PERFORMANCE_IMPORT = "performance.performanceimport"


def label(model) -> str:
    return model._meta.label_lower


REGISTERED = sorted(admin.site._registry, key=label)
APP_LABELS = sorted({model._meta.app_label for model in REGISTERED})

# Named objects of `admin_data` whose change pages are rendered; any other registered model
# gets its first object ("first").
CHANGE_CASES = {
    "auth.user": ["admin", "merchandiser"],
    PRODUCT: [
        "new-pending",
        "new-synced",
        "historical-bestseller-published",
        "historical-index-failed",
        "no-photo",
    ],
    BATCH: ["free", "paid", "empty"],
    ASSET: [*AssetStatus.values, "regenerated-v2"],
    FEED_TOKEN: ["active", "revoked"],
    PERFORMANCE_IMPORT: ["queued", "checked", "done"],
}

# Changelists with filters worth rendering besides the default list. The asset list shows the
# review queue (in review) unless a status or "all" is chosen.
CHANGELIST_QUERIES = {
    ASSET: [
        "status=all",
        *(f"status={value}" for value in AssetStatus.values),
        "offline__exact=1&status=all",
    ],
    PRODUCT: [
        "index_state__exact=failed",
        "index_state__exact=synced",
        "lifecycle__exact=historical",
        "bestseller=yes",
        "bestseller=no",
    ],
}


def sort_by(model, column: str, descending: bool = False) -> str:
    """The changelist query that sorts by a list_display column (the checkbox column is 0)."""
    columns = ["action_checkbox", *admin.site._registry[model].list_display]
    return f"o={'-' if descending else ''}{columns.index(column)}"


CHANGELIST_QUERIES[BATCH] = [
    sort_by(GenerationBatch, "cost_so_far"),
    sort_by(GenerationBatch, "failed_count", descending=True),
]
for _model, _model_admin in admin.site._registry.items():
    if _model_admin.search_fields:
        CHANGELIST_QUERIES.setdefault(label(_model), []).append("q=a")


@pytest.fixture(autouse=True)
def smoke_settings(settings):
    settings.MILVUS_URI = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.MILVUS_TIMEOUT = 1
    use_providers(settings, "Offline")


# --- the data ------------------------------------------------------------------------------


def png(color="white", size=(48, 64)) -> ContentFile:
    return ContentFile(image_bytes(color, size=size, fmt="PNG"))


# How far each status got in the pipeline: 1 retrieved, 2 analysed, 3 generated.
REACHED = {
    AssetStatus.QUEUED: 0,
    AssetStatus.RETRIEVING: 0,
    AssetStatus.ANALYSING: 1,
    AssetStatus.GENERATING: 2,
    AssetStatus.FAILED: 2,
    AssetStatus.CHECKING: 3,
    AssetStatus.IN_REVIEW: 3,
    AssetStatus.APPROVED: 3,
    AssetStatus.REJECTED: 3,
    AssetStatus.PUBLISHED: 3,
    AssetStatus.SET_ASIDE: 3,
}
PATH = [
    AssetStatus.QUEUED,
    AssetStatus.RETRIEVING,
    AssetStatus.ANALYSING,
    AssetStatus.GENERATING,
    AssetStatus.CHECKING,
    AssetStatus.IN_REVIEW,
]
# What QA said of the images that reached review: every verdict, and markup in a note.
QA = {
    "qa_status": "flagged",
    "qa_model": "qwen/qa",
    "qa_checks": [
        {
            "name": "garment_fidelity",
            "passed": False,
            "score": 0.2,
            "note": "The <b>red</b> is orange.",
        },
        {"name": "no_text", "passed": True, "score": 0.9, "note": "No text."},
        {"name": "artefacts", "passed": None, "score": None, "note": "Not checked offline."},
    ],
}


def add_asset(
    batch, product, preset, status, *, cost, offline, references, reviewer, previous=None, **fields
) -> GeneratedAsset:
    now = timezone.now()
    reached = REACHED[status]
    asset = GeneratedAsset(
        batch=batch,
        product=product,
        preset=preset,
        status=status,
        offline=offline,
        cost=cost,
        version=fields.pop("version", previous.version + 1 if previous else 1),
        previous_version=previous,
        aspect_ratio=preset.aspect_ratio,
        size_tier=batch.size_tier,
        reference_count=batch.reference_count,
        **fields,
    )
    if status != AssetStatus.QUEUED:
        asset.attempts, asset.claimed_by, asset.claimed_at = 1, "host:12:3", now
    if reached >= 1:
        asset.retrieved_at, asset.retrieval_note = now, "Only 2 of 3 bestsellers qualify."
    if reached >= 2:
        asset.style_prompt, asset.analyst_model = (
            "soft <b>window</b> light, linen",
            "offline-analyst",
        )
        asset.usage = {"analysis": {"prompt_tokens": 812, "cost": str(cost)}}
        asset.timings = {"retrieve": 0.12, "analyse": 1.5}
    if reached >= 3:
        asset.generation_prompt = "A model in a park wearing the dress"
        asset.image_model, asset.model_text = "offline-generator", "Here is your image."
        asset.width, asset.height = 48, 64
        asset.usage["generation"] = "flat fee"  # not a dict: shown as is
        asset.timings["generate"] = 3.25
        asset.image.save(f"{product.sku}-{preset.pk}-v{asset.version}.png", png(), save=False)
    if reached >= 3 and status != AssetStatus.CHECKING:
        for name, value in QA.items():
            fields.setdefault(name, value)
            setattr(asset, name, fields[name])
    if status == AssetStatus.FAILED:
        asset.failure_reason = "The monthly spending cap of $1 would be passed"
        asset.last_error = "ProviderError: 429 Too Many Requests"
    if status in (
        AssetStatus.APPROVED,
        AssetStatus.REJECTED,
        AssetStatus.PUBLISHED,
        AssetStatus.SET_ASIDE,
    ):
        asset.reviewed_by, asset.reviewed_at = reviewer, now
    if status == AssetStatus.REJECTED:
        asset.rejection_reason = "The label is visible"
    if status == AssetStatus.PUBLISHED:
        asset.published_image.save(
            f"published/{product.sku}-{preset.pk}.png", png("grey"), save=False
        )
        asset.published_at = now
    asset.save()

    if reached >= 1:
        for rank, reference in enumerate(references, start=1):
            AssetReference.objects.create(
                asset=asset,
                product=reference,
                rank=rank,
                score=0.0325 / rank,
                dense_rank=rank,
                sparse_rank=None if rank > 1 else 1,
            )
    steps = PATH[: PATH.index(status) + 1] if status in PATH else PATH[: reached + 1] + [status]
    previous_step = ""
    for step in steps:
        by_person = step in (
            AssetStatus.QUEUED,
            AssetStatus.APPROVED,
            AssetStatus.REJECTED,
            AssetStatus.PUBLISHED,
        )
        AssetEvent.objects.create(
            asset=asset,
            from_status=previous_step,
            to_status=step,
            user=reviewer if by_person else None,
            worker="" if by_person else "host:12:3",
            note=f"to {step}",
        )
        previous_step = step
    return asset


@pytest.fixture
def admin_data(admin_user):
    """Named objects in every state the admin shows, keyed by (model label, case)."""
    data = {("auth.user", "admin"): admin_user}
    merchandiser = User.objects.create_user("merch", "merch@example.com", is_staff=True)
    merchandiser.groups.add(Group.objects.get(name="Merchandiser"))
    data["auth.user", "merchandiser"] = merchandiser

    now = timezone.now()
    new_pending = make_product("NEW-1", lifecycle=Product.Lifecycle.NEW, prompt_hint="autumn park")
    new_synced = make_product("NEW-2", lifecycle=Product.Lifecycle.NEW, color="green")
    bestseller = make_product(
        "OLD-1",
        lifecycle=Product.Lifecycle.HISTORICAL,
        color="red",
        sales_count=5000,
        price=Decimal("49.90"),
        description="Red linen dress",
    )
    failed = make_product(
        "OLD-2",
        lifecycle=Product.Lifecycle.HISTORICAL,
        color="purple",
        sales_count=1600,
        season="summer",
        style="casual",
    )
    bare = Product.objects.create(
        sku="BARE-1", category="dress", image=""
    )  # no photo, no thumbnail
    Product.objects.filter(pk__in=[new_synced.pk, bestseller.pk]).update(
        index_state=IndexState.SYNCED, index_state_at=now
    )
    Product.objects.filter(pk=failed.pk).update(
        index_state=IndexState.FAILED,
        index_state_at=now,
        index_error="Milvus upsert failed: <disk full> " + "x" * 100,
    )
    for case, product in [
        ("new-pending", new_pending),
        ("new-synced", new_synced),
        ("historical-bestseller-published", bestseller),
        ("historical-index-failed", failed),
        ("no-photo", bare),
    ]:
        data[PRODUCT, case] = Product.objects.get(pk=product.pk)

    vectorizer_fit()  # the active TF-IDF vocabulary the index status page names
    IndexRun.objects.create(
        kind=IndexRun.Kind.RECONCILE,
        embedder="offline_v1",
        finished_at=now,
        missing=1,
        stale=2,
        repaired=3,
    )
    IndexRun.objects.create(
        kind=IndexRun.Kind.REBUILD,
        embedder="offline_v1",
        collection="products_v1",
        error="Milvus is unavailable",
    )

    # The spending ledger: a used answer, a paid one that was rejected, a call in flight.
    spend_book(
        key="asset:1:image:1",
        kind=ProviderCall.Kind.IMAGE,
        subject="asset:1",
        model="google/gemini-3.1-flash-image-preview",
        cost=Decimal("0.067"),
        price=Decimal("0.067"),
        usage={"completion_tokens": 1290, "cost": 0.067},
    )
    spend_book(
        key="asset:2:image:1",
        kind=ProviderCall.Kind.IMAGE,
        subject="asset:2",
        model="google/gemini-3.1-flash-image-preview",
        cost=None,
        price=Decimal("0.067"),
        rejected_reason="The model returned a blank image. <script>alert(1)</script>",
    )
    spend_reserve(amount=Decimal("0.005"), owner="host:1:2", subject="asset:3")
    # Imports: one finished with errors (its report is not there: the page says so), one running.
    CatalogImport.objects.create(
        token="0" * 32,
        csv_name="spring <b>.csv",
        kind="historical",
        state="refused",
        errors=2,
        failed=2,
        note="2 errors: nothing imported.",
        finished_at=now,
    )
    CatalogImport.objects.create(
        token="1" * 32,
        csv_name="autumn.csv",
        state="writing",
        total_rows=100,
        rows_written=40,
        phase_started_at=now,
    )
    # A reconcile with the provider's account that found spend nobody booked.
    SpendReconcile.objects.create(
        key_usage=Decimal("1.2"),
        baseline=Decimal("0"),
        attributed=Decimal("1.1"),
        unattributed=Decimal("0.1"),
        booked=Decimal("0.1"),
        settled=1,
    )

    hero, marketplace = (
        ChannelPreset.objects.get(name=HERO),
        ChannelPreset.objects.get(name=MARKETPLACE),
    )
    references = [bestseller, failed]
    common = {"references": references, "reviewer": admin_user}

    # Offline previews: every asset cost $0, so the batch's cost sums to Decimal("0").
    free = GenerationBatch.objects.create(
        requested_by=merchandiser, size_tier="1K", reference_count=2
    )
    free.presets.set([hero, marketplace])
    for product, preset, status in [
        (new_pending, hero, AssetStatus.QUEUED),
        (new_pending, marketplace, AssetStatus.RETRIEVING),
        (new_synced, hero, AssetStatus.ANALYSING),
        (new_synced, marketplace, AssetStatus.GENERATING),
    ]:
        add_asset(free, product, preset, status, cost=Decimal("0"), offline=True, **common)
    add_asset(
        free,
        new_synced,
        hero,
        AssetStatus.CHECKING,
        cost=Decimal("0"),
        offline=True,
        version=2,
        **common,
    )
    for status in (
        AssetStatus.QUEUED,
        AssetStatus.RETRIEVING,
        AssetStatus.ANALYSING,
        AssetStatus.GENERATING,
        AssetStatus.CHECKING,
    ):
        data[ASSET, status] = free.assets.filter(status=status).order_by("pk").first()

    # Paid: real provider costs; it stopped at the spending cap.
    paid = GenerationBatch.objects.create(
        requested_by=merchandiser,
        size_tier="2K",
        reference_count=2,
        estimated_cost=Decimal("0.636"),
        note="The monthly spending cap of $1 would be passed",
    )
    paid.presets.set([hero, marketplace])
    price = {"cost": Decimal("0.106"), "offline": False, **common}
    data[ASSET, AssetStatus.PUBLISHED] = add_asset(
        paid, bestseller, hero, AssetStatus.PUBLISHED, **price
    )
    data[ASSET, AssetStatus.APPROVED] = add_asset(
        paid, bestseller, marketplace, AssetStatus.APPROVED, **price
    )
    data[ASSET, AssetStatus.SET_ASIDE] = add_asset(
        paid, bestseller, marketplace, AssetStatus.SET_ASIDE, variant=2, **price
    )  # the approved one's sibling
    rejected = add_asset(paid, failed, hero, AssetStatus.REJECTED, **price)
    data[ASSET, AssetStatus.REJECTED] = rejected
    data[ASSET, "regenerated-v2"] = add_asset(
        paid,
        failed,
        hero,
        AssetStatus.IN_REVIEW,
        previous=rejected,
        feedback="Hide the label",
        **price,
    )
    data[ASSET, AssetStatus.FAILED] = add_asset(
        paid,
        failed,
        marketplace,
        AssetStatus.FAILED,
        cost=Decimal("0.005"),
        offline=False,
        **common,
    )
    # An offline preview in the queue too, in the free batch.
    data[ASSET, AssetStatus.IN_REVIEW] = add_asset(
        free,
        new_pending,
        ChannelPreset.objects.create(
            name="Story", aspect_ratio="9:16", rules="Leave the top fifth empty."
        ),
        AssetStatus.IN_REVIEW,
        cost=Decimal("0"),
        offline=True,
        **common,
    )

    empty = GenerationBatch.objects.create(requested_by=None, size_tier="0.5K")
    empty.presets.set([hero])
    data[BATCH, "free"], data[BATCH, "paid"], data[BATCH, "empty"] = free, paid, empty

    # Feed tokens: one in use, one revoked, one expired; names with markup.
    data[FEED_TOKEN, "active"], _ = feed_token_create(name="Marketplace <b>upload", user=admin_user)
    FeedToken.objects.filter(pk=data[FEED_TOKEN, "active"].pk).update(last_used_at=now)
    data[FEED_TOKEN, "revoked"], _ = feed_token_create(name="Old upload", user=merchandiser)
    feed_token_revoke(token=data[FEED_TOKEN, "revoked"], user=admin_user)
    feed_token_create(name="Trial", expires_at=now - timedelta(days=1))
    # Performance: an import waiting with a row of each list (markup in them), one written.
    data[PERFORMANCE_IMPORT, "checked"] = PerformanceImport.objects.create(
        requested_by=merchandiser,
        token="a" * 32,
        csv_name="ads <b>export.csv",
        rows=4,
        matched=1,
        unmatched=1,
        duplicates=1,
        updated=1,
        report={
            "errors": [],
            "unmatched": [[3, "<b>X", HERO, "2026-01-02", "no product has the SKU '<b>X'"]],
            "duplicates": [[4, 2, "SKU1", HERO, "2026-01-01", False]],
            "updates": [[2, "SKU1", HERO, "2026-01-01", "clicks 3 → 4"]],
        },
    )
    data[PERFORMANCE_IMPORT, "queued"] = PerformanceImport.objects.create(
        requested_by=merchandiser, token="c" * 32, csv_name="large.csv"
    )
    data[PERFORMANCE_IMPORT, "done"] = done = PerformanceImport.objects.create(
        token="b" * 32, csv_name="ads.csv", state=PerformanceImport.State.DONE, finished_at=now
    )
    ChannelDay.objects.create(
        asset=data[ASSET, AssetStatus.PUBLISHED],
        preset=hero,
        date=now.date(),
        impressions=100,
        clicks=7,
        revenue=Decimal("19.90"),
        source=done,
    )
    # API tokens: one active for the admin, one revoked; a name with markup.
    api_token_create(name="PIM <b>sync", owner=admin_user, scopes=["products:read"])
    api_token_revoke(token=api_token_create(name="Old PIM", owner=admin_user, scopes=[])[0])
    assert {asset.status for asset in GeneratedAsset.objects.all()} == set(AssetStatus.values)

    # Webhooks: an active endpoint with a delivery that failed (an answer with markup), and a
    # disabled one; made last, so the data above sends no events.
    endpoint, _ = endpoint_create(
        url="https://shop.example.com/hooks", events=EventType.values, owner=admin_user
    )
    disabled, _ = endpoint_create(url="https://old.example.com/hooks", events=["asset.published"])
    endpoint_disable(endpoint=disabled, reason="3 deliveries in a row failed after every retry.")
    webhooks_emit(event_type="product.created", payloads=[product_payload(new_pending)])
    delivery = WebhookDelivery.objects.get()
    WebhookAttempt.objects.create(
        delivery=delivery, started_at=now, status_code=500, response="<b>oops</b>", worker="w"
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=11, last_status_code=500, last_response="<b>oops</b>"
    )
    # The login lockout's records (axes): a guesser locked out at the real login form.
    for _ in range(5):  # LOGIN_FAILURES_PER_USER
        Client().post("/admin/login/", {"username": "<b>guesser", "password": "nope"})
    return data


def stored_object(admin_data, model, case):
    key = (label(model), case)
    if case == "first":
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"No {key[0]} object to show: add one to the admin_data fixture"
        return obj
    return admin_data[key]


# --- what a rendered page must look like ----------------------------------------------------

ERROR_MARKERS = [
    "Traceback",
    'id="traceback"',
    "Server Error (500)",
    "<title>Page not found",
    "Exception Value",
    "403 Forbidden",
]


def assert_renders(response):
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for marker in ERROR_MARKERS:
        assert marker not in html, f"error page: {marker!r} in the response"
    assert 'id="container"' in html and "</html>" in html  # the whole admin page was rendered
    assert_strict_csp(response)
    return html


def model_id(model) -> str:
    return label(model)


# --- index and app pages ----------------------------------------------------------------------


def test_admin_index(admin_client, admin_data):
    html = assert_renders(admin_client.get(reverse("admin:index")))
    for model in REGISTERED:
        assert reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") in html


@pytest.mark.parametrize("app_label", APP_LABELS)
def test_app_index(admin_client, admin_data, app_label):
    assert_renders(admin_client.get(reverse("admin:app_list", args=[app_label])))


# --- every registered ModelAdmin ---------------------------------------------------------------


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


CHANGELISTS = [pytest.param(model, "", id=label(model)) for model in REGISTERED] + [
    pytest.param(model, query, id=f"{label(model)}?{query}")
    for model in REGISTERED
    for query in CHANGELIST_QUERIES.get(label(model), [])
]


@pytest.mark.parametrize("model,query", CHANGELISTS)
def test_changelist(admin_client, admin_data, model, query):
    response = admin_client.get(admin_url(model, "changelist") + (f"?{query}" if query else ""))
    assert_renders(response)
    # An unknown filter value makes Django redirect with ?e=1 instead of showing the list.
    assert "e=1" not in response.wsgi_request.get_full_path()


CHANGE_PAGES = [
    pytest.param(model, case, id=f"{label(model)}:{case}")
    for model in REGISTERED
    for case in CHANGE_CASES.get(label(model), ["first"])
]


@pytest.mark.parametrize("model,case", CHANGE_PAGES)
def test_change_page(admin_client, admin_data, model, case):
    obj = stored_object(admin_data, model, case)
    html = assert_renders(admin_client.get(admin_url(model, "change", obj.pk)))
    assert 'id="content-main"' in html


@pytest.mark.parametrize("model", REGISTERED, ids=model_id)
def test_add_page(admin_client, admin_data, model):
    response = admin_client.get(admin_url(model, "add"))
    if not admin.site._registry[model].has_add_permission(response.wsgi_request):
        assert response.status_code == 403  # made elsewhere (batches, assets): no add page
        return
    assert_renders(response)


@pytest.mark.parametrize("model", REGISTERED, ids=model_id)
def test_history_page(admin_client, admin_data, model):
    case = CHANGE_CASES.get(label(model), ["first"])[0]
    obj = stored_object(admin_data, model, case)
    assert_renders(admin_client.get(admin_url(model, "history", obj.pk)))


@pytest.mark.parametrize("model", REGISTERED, ids=model_id)
def test_delete_confirmation_page(admin_client, admin_data, model):
    case = CHANGE_CASES.get(label(model), ["first"])[-1]
    obj = stored_object(admin_data, model, case)
    response = admin_client.get(admin_url(model, "delete", obj.pk))
    if not admin.site._registry[model].has_delete_permission(response.wsgi_request, obj):
        assert response.status_code == 403  # the ledger is never deleted by hand
    else:
        assert_renders(response)
    assert model._default_manager.filter(pk=obj.pk).exists()  # a GET deletes nothing


# --- the custom pages ----------------------------------------------------------------------------


def test_product_import_page(admin_client, admin_data):
    html = assert_renders(admin_client.get(reverse("admin:catalog_product_import")))
    assert 'name="csv_file"' in html


def test_index_status_page_with_milvus_down(admin_client, admin_data):
    response = admin_client.get(reverse("admin:catalog_product_index_status"))
    assert_renders(response)
    assert response.context["status"]["error"]  # says Milvus is unreachable, still renders


def test_index_status_page_with_milvus_lite(admin_client, admin_data, milvus):
    response = admin_client.get(reverse("admin:catalog_product_index_status"))
    assert_renders(response)
    assert "error" not in response.context["status"]


def selected(admin_data) -> list[str]:
    return [str(admin_data[PRODUCT, case].pk) for case in CHANGE_CASES[PRODUCT]]


REQUEST = reverse("admin:generation_generationbatch_request")


def test_promo_request_page_get(admin_client, admin_data):
    response = admin_client.get(REQUEST, {ACTION_CHECKBOX_NAME: selected(admin_data)})
    html = assert_renders(response)
    assert "BARE-1" in html  # left out for lack of a photo, and said so


@pytest.mark.parametrize("providers", ["Offline", "Paid"])
def test_promo_request_page_post_renders_the_estimate(
    admin_client, admin_data, settings, providers
):
    use_providers(settings, providers)
    presets = ChannelPreset.objects.filter(name__in=[HERO, MARKETPLACE])
    response = admin_client.post(
        REQUEST,
        {
            ACTION_CHECKBOX_NAME: selected(admin_data),
            "presets": [str(p.pk) for p in presets],
            "size_tier": "2K",
            "reference_count": "1",
            "_update": "Update estimate",
        },
    )
    html = assert_renders(response)
    assert response.context["estimate"] is not None and 'name="_confirm"' in html
    assert not GenerationBatch.objects.filter(pk__gt=admin_data[BATCH, "empty"].pk).exists()


def test_promo_request_page_post_with_form_errors(admin_client, admin_data):
    response = admin_client.post(
        REQUEST,
        {
            ACTION_CHECKBOX_NAME: selected(admin_data),
            "size_tier": "3K",
            "reference_count": "0",
            "_update": "1",
        },
    )
    assert_renders(response)
    assert set(response.context["form"].errors) == {"presets", "size_tier", "reference_count"}


def test_product_action_generate_promos_renders_the_request_page(admin_client, admin_data):
    response = admin_client.post(
        admin_url(Product, "changelist"),
        {"action": "generate_promos", ACTION_CHECKBOX_NAME: selected(admin_data)},
    )
    assert_renders(response)
    assert "admin/generation/promo_request.html" in [t.name for t in response.templates]


def test_asset_action_reject_selected_renders_the_reason_page(admin_client, admin_data):
    in_review = GeneratedAsset.objects.filter(status=AssetStatus.IN_REVIEW)
    response = admin_client.post(
        admin_url(GeneratedAsset, "changelist"),
        {"action": "reject_selected", ACTION_CHECKBOX_NAME: [str(a.pk) for a in in_review]},
    )
    assert_renders(response)
    assert "admin/generation/generatedasset/reject_selected.html" in [
        t.name for t in response.templates
    ]


@pytest.mark.parametrize("case", CHANGE_CASES[BATCH])
def test_batch_progress_endpoint(admin_client, admin_data, case):
    batch = admin_data[BATCH, case]
    response = admin_client.get(
        reverse("admin:generation_generationbatch_progress", args=[batch.pk])
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = response.json()
    assert data["counts"]["total"] == batch.assets.count()
    assert data["counts"]["cost"].startswith("$")
    assert len(data["assets"]) == batch.assets.count()


def test_review_gallery_page(admin_client, admin_data):
    html = assert_renders(admin_client.get(reverse("admin:generation_generatedasset_gallery")))
    assert 'id="gallery"' in html
    assert_renders(
        admin_client.get(
            reverse("admin:generation_generatedasset_gallery"),
            {"status": "rejected", "product": "NEW", "preset": "1", "batch": "x"},
        )
    )


def test_feed_token_revoke_page(admin_client, admin_data):
    token = admin_data[FEED_TOKEN, "active"]
    html = assert_renders(
        admin_client.get(reverse("admin:generation_feedtoken_revoke", args=[token.pk]))
    )
    assert "Marketplace &lt;b&gt;upload" in html


def test_feed_token_created_page(admin_client, admin_data):
    html = assert_renders(
        admin_client.post(reverse("admin:generation_feedtoken_add"), {"name": "New <i>upload"})
    )
    assert "shown only this once" in html and "New &lt;i&gt;upload" in html
