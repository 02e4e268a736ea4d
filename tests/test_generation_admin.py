"""Requesting promo images (product action, confirmation page, command) and the generation admin.

Everything goes through the real admin views with the test client and the stub broker. The
providers are small doubles chosen by dotted path, like the real ones, so a test decides
whether the request is priced (OpenRouter-like) or free (offline).
"""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import dramatiq
import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageDraw

from catalog.images import image_prepare
from catalog.indexing import index_rebuild
from catalog.models import Product
from catalog.services import product_save
from generation.forms import usd
from generation.models import (
    AssetEvent,
    AssetReference,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
)
from generation.services import BatchRequest, batch_create
from generation.sizes import pixel_size
from generation.spending import estimate
from tests.factories import image_bytes, make_product, use_providers

pytestmark = pytest.mark.django_db

PRODUCTS = reverse("admin:catalog_product_changelist")
REQUEST = reverse("admin:generation_generationbatch_request")
HERO, MARKETPLACE = "Storefront hero", "Marketplace main image"  # seeded by a migration
MERCHANDISER_PERMS = (
    "catalog.view_product",
    "catalog.change_product",
    "generation.request_promos",
    "generation.view_generationbatch",
    "generation.view_generatedasset",
)


@pytest.fixture(autouse=True)
def offline_providers(settings):
    use_providers(settings, "Offline")


@pytest.fixture
def paid_providers(settings):
    use_providers(settings, "Paid")


# --- builders ------------------------------------------------------------------------------


def staff_user(username: str, *perms: str) -> User:
    user = User.objects.create_user(username=username, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def merchandiser_client(client):
    client.force_login(staff_user("merch", *MERCHANDISER_PERMS))
    return client


@pytest.fixture
def editor_client(client):
    """Staff who may edit products but not request promo images."""
    client.force_login(
        staff_user(
            "editor",
            "catalog.view_product",
            "catalog.change_product",
            "generation.view_generationbatch",
        )
    )
    return client


@pytest.fixture
def products():
    return [
        make_product("NEW-1", lifecycle=Product.Lifecycle.NEW),
        make_product("OLD-2", lifecycle=Product.Lifecycle.HISTORICAL, color="red"),
    ]


def preset(name: str) -> ChannelPreset:
    return ChannelPreset.objects.get(name=name)


def selection(products) -> list[str]:
    return [str(p.pk) for p in products]


def action_post(client, products):
    """What the product list sends when the action is chosen for these products."""
    return client.post(
        PRODUCTS, {"action": "generate_promos", ACTION_CHECKBOX_NAME: selection(products)}
    )


def request_data(products, presets=(HERO, MARKETPLACE), size="2K", references=1, **extra) -> dict:
    return {
        ACTION_CHECKBOX_NAME: selection(products),
        "presets": [str(preset(name).pk) for name in presets],
        "size_tier": size,
        "reference_count": str(references),
        **extra,
    }


def confirm_data(page) -> dict:
    """The confirmation as the page's "Generate" button sends it."""
    html = page.content.decode()
    context = page.context
    assert 'name="_confirm"' in html
    return {
        **request_data(
            context["products"],
            [p.name for p in context["form"].cleaned_data["presets"]],
            context["form"].cleaned_data["size_tier"],
        ),
        "expected_images": str(context["estimate"].images),
        "expected_total": context["expected_total"],
        "_confirm": "Generate",
        "request_key": context["request_key"],
    }


def queued_asset_ids(broker) -> list[int]:
    # Small requests go to the interactive lane's queue, larger ones to the bulk queue. A queue
    # is declared when generation.tasks is first imported, i.e. on the first send.
    lanes = ("generation", "generation-interactive")
    messages = [m for name in lanes if name in broker.queues for m in broker.queues[name].queue]
    return sorted(dramatiq.Message.decode(m).args[0] for m in messages)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def page_text(response) -> str:
    """The HTML with runs of whitespace made single spaces, as a browser shows it."""
    return " ".join(response.content.decode().split())


def nothing_requested() -> bool:
    return not GenerationBatch.objects.exists() and not GeneratedAsset.objects.exists()


# --- the action and its permission ---------------------------------------------------------


def action_names(response) -> list[str]:
    return [name for name, _ in response.context["action_form"].fields["action"].choices]


def test_the_action_is_listed_only_for_users_with_the_permission(
    merchandiser_client, client, products
):
    assert "generate_promos" in action_names(merchandiser_client.get(PRODUCTS))
    assert "Generate promo images" in merchandiser_client.get(PRODUCTS).content.decode()

    client.force_login(staff_user("editor", "catalog.view_product", "catalog.change_product"))
    assert "generate_promos" not in action_names(client.get(PRODUCTS))


def test_the_request_page_and_its_confirmation_are_forbidden_without_the_permission(
    editor_client, products, broker
):
    assert (
        editor_client.get(REQUEST, {ACTION_CHECKBOX_NAME: selection(products)}).status_code == 403
    )
    assert editor_client.post(REQUEST, request_data(products, _update="1")).status_code == 403
    confirm = request_data(products, expected_images="4", expected_total="0", _confirm="Generate")
    assert editor_client.post(REQUEST, confirm).status_code == 403
    assert nothing_requested()


def test_posting_the_action_without_the_permission_runs_nothing(editor_client, products):
    # The product list never runs an action the user may not use: Django refuses it
    # server-side ("No action selected") before our code is reached.
    response = action_post(editor_client, products)

    assert response.status_code == 302
    assert messages_of(response) == ["No action selected."]
    assert nothing_requested()


def test_the_action_itself_refuses_a_user_without_the_permission(products):
    request = RequestFactory().post(PRODUCTS)
    request.user = staff_user("editor", "catalog.view_product")
    model_admin = admin.site.get_model_admin(Product)  # as generation registered it

    with pytest.raises(PermissionDenied):
        model_admin.generate_promos(request, Product.objects.all())


# --- the confirmation page -----------------------------------------------------------------


def test_the_action_shows_the_selected_products_and_an_empty_form(merchandiser_client, products):
    response = action_post(merchandiser_client, products)

    assert response.status_code == 200
    assert [p.sku for p in response.context["products"]] == ["NEW-1", "OLD-2"]
    html = response.content.decode()
    assert f'<img src="{products[0].thumbnail.url}" alt="NEW-1"' in html
    assert "Historical listing" in html and "New, awaiting promo images" in html
    assert "1 of them is a historical listing" in html
    assert f'action="{REQUEST}"' in html
    assert 'name="_confirm"' not in html  # nothing to confirm before an estimate was shown
    assert nothing_requested()


def test_the_page_shows_the_image_count_and_estimate_before_anything_is_queued(
    merchandiser_client, products, paid_providers, broker
):
    response = merchandiser_client.post(REQUEST, request_data(products, size="2K", _update="1"))

    assert response.status_code == 200
    expected = estimate(
        images_per_preset=[(2, False), (2, False)], size_tier="2K", references=1, offline=False
    )
    # Per image: the image, the flat-lay and 1 reference sent in, the analysis, the check.
    assert expected.total == 4 * (
        Decimal("0.101") + 2 * Decimal("0.0006") + Decimal("0.005") + Decimal("0.004")
    )
    html = page_text(response)
    assert "<strong>4 images</strong>: 2 products × 2 presets at 2K." in html
    assert f"<strong>{usd(expected.per_image)} per image</strong>" in html  # $0.111
    assert "4 image calls × $0.101" in html
    assert "8 input images × $0.0006 (each call sends the flat-lay and 1 reference" in html
    assert "4 style analyses × $0.005" in html and "4 quality checks × $0.004" in html
    assert f"<strong>{usd(expected.total)} in total</strong>" in html  # $0.445
    assert 'value="Generate 4 images"' in html
    assert "Offline preview providers" not in html
    assert nothing_requested()
    assert queued_asset_ids(broker) == []


def test_offline_providers_are_said_plainly(merchandiser_client, products):
    response = merchandiser_client.post(REQUEST, request_data(products, _update="1"))

    assert (
        "Offline preview providers: no cost, images are local previews, not AI photos."
        in response.content.decode()
    )


def test_form_errors_are_shown_and_nothing_is_queued(merchandiser_client, products, settings):
    settings.GENERATION_MAX_REFERENCES = 3
    data = request_data(products, presets=(), references=9, _confirm="Generate")

    response = merchandiser_client.post(REQUEST, data)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "presets": ["Choose at least one channel preset."],
        "reference_count": ["Use between 1 and 3 reference bestsellers."],
    }
    assert nothing_requested()


def test_products_without_a_photo_are_left_out(merchandiser_client, products):
    bare = Product.objects.create(sku="BARE-3", category="dress", image="")

    response = merchandiser_client.post(REQUEST, request_data([*products, bare], _update="1"))

    assert [p.sku for p in response.context["products"]] == ["NEW-1", "OLD-2"]
    assert "1 selected product without a photo is left out: BARE-3." in page_text(response)
    assert response.context["estimate"].images == 4


def test_confirming_creates_the_batch_and_queues_its_assets_after_commit(
    merchandiser_client, products, paid_providers, broker, django_capture_on_commit_callbacks
):
    page = merchandiser_client.post(REQUEST, request_data(products, size="2K", _update="1"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = merchandiser_client.post(REQUEST, confirm_data(page))
        assert queued_asset_ids(broker) == []  # not while the transaction is open

    batch = GenerationBatch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:generation_generationbatch_change", args=[batch.pk])
    assert batch.requested_by.username == "merch"
    assert (batch.size_tier, batch.estimated_cost) == ("2K", Decimal("0.4448"))
    assert sorted(p.name for p in batch.presets.all()) == [MARKETPLACE, HERO]
    assets = list(batch.assets.order_by("pk"))
    assert len(assets) == 4 and {a.status for a in assets} == {AssetStatus.QUEUED}
    assert sorted((a.product.sku, a.preset.name) for a in assets) == [
        ("NEW-1", MARKETPLACE),
        ("NEW-1", HERO),
        ("OLD-2", MARKETPLACE),
        ("OLD-2", HERO),
    ]
    events = AssetEvent.objects.filter(asset__batch=batch)
    assert sorted(events.values_list("asset_id", flat=True)) == [a.pk for a in assets]
    assert set(events.values_list("to_status", flat=True)) == {AssetStatus.QUEUED}
    assert len(callbacks) == 4
    assert queued_asset_ids(broker) == [a.pk for a in assets]
    assert messages_of(response) == [
        f"Queued 4 promo image(s) in batch {batch.pk} (estimated $0.445)."
    ]


def test_pressing_generate_twice_makes_one_batch(merchandiser_client, products, broker):
    page = merchandiser_client.post(REQUEST, request_data(products, _update="1"))
    assert f'name="request_key" value="{page.context["request_key"]}"' in page.content.decode()

    first = merchandiser_client.post(REQUEST, confirm_data(page))
    second = merchandiser_client.post(REQUEST, confirm_data(page))  # the same page, again

    batch = GenerationBatch.objects.get()
    assert (
        first.url
        == second.url
        == reverse("admin:generation_generationbatch_change", args=[batch.pk])
    )
    assert batch.assets.count() == 4
    assert f"This request was already queued as batch {batch.pk}." in messages_of(second)


def test_a_staged_preset_counts_its_scene_call_and_every_input_image(
    merchandiser_client, products, paid_providers, broker
):
    ChannelPreset.objects.filter(name=HERO).update(staged=True)
    response = merchandiser_client.post(
        REQUEST, request_data(products, size="2K", references=5, _update="1")
    )

    quote = response.context["estimate"]
    # Hero (staged): the scene (5 references in), then the product (flat-lay + scene in);
    # Marketplace: one call with the flat-lay and 5 references.
    assert (quote.images, quote.image_calls, quote.input_images) == (4, 6, 2 * 7 + 2 * 6)
    assert quote.total == (
        6 * Decimal("0.101") + 26 * Decimal("0.0006") + 4 * (Decimal("0.005") + Decimal("0.004"))
    )
    assert f"staged presets make two per image: {HERO}" in page_text(response)


def test_a_price_label_on_products_without_a_price_is_refused_on_the_page(
    merchandiser_client, products, paid_providers, broker
):
    Product.objects.filter(sku="OLD-2").update(price="59.00")
    ChannelPreset.objects.filter(name=HERO).update(overlay_text="Now {price} €")
    response = merchandiser_client.post(REQUEST, request_data(products, _update="1"))

    assert response.status_code == 200 and response.context["estimate"] is None
    assert (
        f"{HERO} shows the price in the image, and 1 selected product(s) have none: NEW-1. "
        "Leave that preset out, or set their prices first."
    ) in page_text(response)
    confirmed = merchandiser_client.post(REQUEST, request_data(products, _confirm="1"))
    assert confirmed.status_code == 200 and nothing_requested()


def test_a_confirmation_that_no_longer_matches_the_estimate_is_shown_again(
    merchandiser_client, products, paid_providers, broker
):
    page = merchandiser_client.post(REQUEST, request_data(products, size="2K", _update="1"))
    stale = {**confirm_data(page), "size_tier": "4K"}  # changed after the estimate was shown

    response = merchandiser_client.post(REQUEST, stale)

    assert response.status_code == 200
    assert "The request changed since the estimate was shown" in response.content.decode()
    assert 'value="Generate 4 images"' in response.content.decode()
    assert response.context["total"] == usd(Decimal("0.6448"))
    assert nothing_requested()


# --- presets, batch and asset pages -----------------------------------------------------------------


def test_presets_are_listed_and_can_be_switched_off_in_the_list(admin_client):
    url = reverse("admin:generation_channelpreset_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    formset = response.context["cl"].formset
    data = {
        "form-TOTAL_FORMS": str(len(formset.forms)),
        "form-INITIAL_FORMS": str(len(formset.forms)),
        "_save": "Save",
    }
    for n, form in enumerate(formset.forms):
        data[f"form-{n}-id"] = str(form.instance.pk)
        if form.instance.name != HERO:
            data[f"form-{n}-is_active"] = "on"

    assert admin_client.post(url, data).status_code == 302
    assert list(ChannelPreset.objects.filter(is_active=False).values_list("name", flat=True)) == [
        HERO
    ]


@pytest.fixture
def running_batch(products):
    """Three assets: one finished, one failed by the spending cap, one still queued."""
    third = make_product("NEW-3", lifecycle=Product.Lifecycle.NEW, color="green")
    batch = batch_create(
        user=None,
        request=BatchRequest([*products, third], [preset(HERO)], "1K", 1),
        estimated_cost=Decimal("0.216"),
    )
    done, failed, _ = batch.assets.order_by("product__sku")
    GeneratedAsset.objects.filter(pk=done.pk).update(
        status=AssetStatus.IN_REVIEW, cost=Decimal("0.072")
    )
    GeneratedAsset.objects.filter(pk=failed.pk).update(
        status=AssetStatus.FAILED, failure_reason="The monthly spending cap of $1 would be passed"
    )
    GenerationBatch.objects.filter(pk=batch.pk).update(
        note="The monthly spending cap of $1 would be passed"
    )
    return batch


def test_the_batch_list_shows_progress_failures_and_cost(merchandiser_client, running_batch):
    response = merchandiser_client.get(reverse("admin:generation_generationbatch_changelist"))

    assert response.status_code == 200
    row = response.context["cl"].result_list[0]
    model_admin = response.context["cl"].model_admin
    assert model_admin.progress_tag(row) == "1/3"
    assert model_admin.failed_count(row) == 1
    assert model_admin.cost_so_far(row) == "$0.072"
    assert model_admin.estimated_cost_usd(row) == "$0.216"
    assert model_admin.preset_names(row) == HERO


def test_the_batch_page_is_read_only_and_shows_live_progress(merchandiser_client, running_batch):
    url = reverse("admin:generation_generationbatch_change", args=[running_batch.pk])
    response = merchandiser_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html
    assert '<span data-count="finished">1</span>/<span data-count="total">3</span> finished' in html
    assert '<span data-count="failed">1</span> failed' in html
    assert '<strong data-count="cost">$0.072</strong> of $0.216 estimated' in html
    assert "The monthly spending cap of $1 would be passed" in html
    progress_url = reverse("admin:generation_generationbatch_progress", args=[running_batch.pk])
    assert f'data-url="{progress_url}" data-running="1"' in html
    for asset in running_batch.assets.all():
        assert reverse("admin:generation_generatedasset_change", args=[asset.pk]) in html
    assert (
        merchandiser_client.get(reverse("admin:generation_generationbatch_add")).status_code == 403
    )


def test_the_progress_endpoint_reports_counts(merchandiser_client, running_batch):
    url = reverse("admin:generation_generationbatch_progress", args=[running_batch.pk])
    data = merchandiser_client.get(url).json()

    assert {k: v for k, v in data["counts"].items() if k in ("total", "finished")} == {
        "total": 3,
        "finished": 1,
    }
    assert data["counts"]["failed"] == data["counts"]["running"] == 1
    assert data["counts"]["cost"] == "$0.072"
    assert (
        data["by_status"]["queued"]
        == data["by_status"]["in_review"]
        == data["by_status"]["failed"]
        == 1
    )
    assert data["note"] == "The monthly spending cap of $1 would be passed"
    assert [a["status"] for a in data["assets"]] == ["In review", "Failed", "Queued"]


def test_the_progress_endpoint_needs_view_permission(client, running_batch):
    client.force_login(staff_user("outsider", "catalog.view_product"))
    url = reverse("admin:generation_generationbatch_progress", args=[running_batch.pk])
    assert client.get(url).status_code == 403


@pytest.fixture
def finished_asset(running_batch):
    asset = running_batch.assets.get(status=AssetStatus.IN_REVIEW)
    reference = make_product("BEST-9", sales_count=5000, color="purple")
    AssetReference.objects.create(
        asset=asset, product=reference, rank=1, score=0.0325, dense_rank=2, sparse_rank=1
    )
    asset.style_prompt = "<script>alert(1)</script> soft light"
    asset.generation_prompt = 'A model <img src=x onerror="alert(2)"> in a park'
    asset.offline, asset.width, asset.height = True, 864, 1184
    asset.analyst_model, asset.image_model = "offline-analyst", "offline-generator"
    asset.usage = {"analysis": {"prompt_tokens": 812, "cost": "0.004"}}
    asset.timings = {"retrieve": 0.12, "analyse": 1.5}
    asset.image.save(
        "NEW-1-v1.png", ContentFile(image_bytes(size=(86, 118), fmt="PNG")), save=False
    )
    asset.save()
    AssetEvent.objects.create(
        asset=asset,
        from_status=AssetStatus.GENERATING,
        to_status=AssetStatus.IN_REVIEW,
        worker="host:1:2",
        note="done <b>ok</b>",
    )
    return asset


def test_the_asset_page_escapes_model_text_and_labels_offline_previews(
    merchandiser_client, finished_asset
):
    response = merchandiser_client.get(
        reverse("admin:generation_generatedasset_change", args=[finished_asset.pk])
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; soft light</pre>" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "done &lt;b&gt;ok&lt;/b&gt;" in html
    assert "<strong>Offline preview</strong>" in html
    assert "864×1184 px" in html
    assert f'src="{finished_asset.image.url}"' in html
    assert f'src="{finished_asset.product.image.url}"' in html
    assert "BEST-9" in html and "0.03250" in html
    assert "prompt_tokens: 812" in html and "retrieve: 0.12 s" in html
    assert "worker host:1:2" in html and "Generating image" in html
    assert 'name="_save"' not in html


def test_the_asset_list_has_a_badge_for_offline_previews_and_filters(
    merchandiser_client, finished_asset
):
    url = reverse("admin:generation_generatedasset_changelist")

    everything = merchandiser_client.get(url, {"status": "all"})
    offline_only = merchandiser_client.get(url, {"offline__exact": "1", "status": "all"})
    failed_only = merchandiser_client.get(url, {"status": "failed"})

    assert everything.status_code == 200
    assert everything.content.decode().count('class="offline-badge"') == 1
    assert [a.pk for a in offline_only.context["cl"].result_list] == [finished_asset.pk]
    assert [a.status for a in failed_only.context["cl"].result_list] == [AssetStatus.FAILED]
    assert (
        merchandiser_client.get(reverse("admin:generation_generatedasset_add")).status_code == 403
    )


# --- the command ---------------------------------------------------------------------------


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_promos", *args, stdout=out)
    return out.getvalue()


def test_the_command_names_an_unknown_preset_and_lists_the_available_ones(products):
    with pytest.raises(CommandError) as error:
        run_command("--sku", "NEW-1", "--preset", "Billboard")

    assert str(error.value).startswith(
        "Unknown or inactive preset 'Billboard'. Available presets: "
    )
    assert f"'{HERO}'" in str(error.value) and f"'{MARKETPLACE}'" in str(error.value)
    assert nothing_requested()


def test_the_command_names_an_unknown_sku(products):
    with pytest.raises(CommandError, match=r"Unknown SKU\(s\): NOPE-1, NOPE-2\."):
        run_command("--sku", "NEW-1", "NOPE-1", "NOPE-2", "--preset", HERO)
    assert nothing_requested()


def test_the_command_rejects_a_bad_size(products):
    with pytest.raises(CommandError, match="Choose a size of 0.5K, 1K, 2K, 4K"):
        run_command("--sku", "NEW-1", "--preset", HERO, "--size", "3K")


def test_the_command_with_new_picks_the_new_products(products):
    make_product("NEW-0", lifecycle=Product.Lifecycle.NEW, color="white")

    run_command("--new", "--preset", HERO)

    batch = GenerationBatch.objects.get()
    assert sorted(batch.assets.values_list("product__sku", flat=True)) == ["NEW-0", "NEW-1"]


def test_the_command_without_wait_prints_the_estimate_and_queues(
    products, paid_providers, broker, django_capture_on_commit_callbacks
):
    User.objects.create_user("ops").groups.add(Group.objects.get(name="Merchandiser"))

    with django_capture_on_commit_callbacks(execute=True):
        output = run_command(
            "--sku", "OLD-2", "NEW-1", "--preset", HERO, "--preset", MARKETPLACE, "--user", "ops"
        )

    batch = GenerationBatch.objects.get()
    assert output.startswith(
        "4 image(s): 2 product(s) × 2 preset(s) at 1K.\n"
        "Estimated cost: $0.078 per image, $0.314 in total (4 image calls with 16 input images, "
        "analyses and quality checks).\n"
        f"Queued batch {batch.pk}.\n"
    )
    # 3 references by default: 4 × (0.067 + 4 × 0.0006 + 0.005 + 0.004)
    assert batch.requested_by.username == "ops" and batch.estimated_cost == Decimal("0.3136")
    assert output.count("Queued  ") == 4  # one table row per asset, status "Queued"
    assert queued_asset_ids(broker) == sorted(batch.assets.values_list("pk", flat=True))


def test_the_command_says_when_the_providers_are_offline(products):
    output = run_command("--sku", "NEW-1", "--preset", HERO)
    assert "Offline preview providers: no cost, images are local previews, not AI photos." in output


def flat_lay(color: tuple[int, int, int]) -> bytes:
    """A garment-like shape on a white studio background, for the offline providers."""
    image = Image.new("RGB", (200, 260), "white")
    ImageDraw.Draw(image).polygon([(70, 30), (130, 30), (170, 230), (30, 230)], fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stored_product(sku: str, color, **fields) -> Product:
    product = Product(sku=sku, category="dress", **fields)
    return product_save(product=product, image=image_prepare(flat_lay(color)))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_command_waits_for_a_real_worker_and_prints_the_outcome(
    settings, milvus, broker, worker
):
    settings.STYLE_ANALYST_BACKEND = "generation.providers.offline.OfflineStyleAnalyst"
    settings.IMAGE_GENERATOR_BACKEND = "generation.providers.offline.OfflineImageGenerator"
    settings.QUALITY_CHECKER_BACKEND = "generation.providers.offline.OfflineQualityChecker"
    for n, color in enumerate([(180, 30, 40), (30, 50, 150)]):
        stored_product(f"BEST-{n}", color, sales_count=5000, lifecycle=Product.Lifecycle.HISTORICAL)
    stored_product("NEW-1", (40, 140, 60), lifecycle=Product.Lifecycle.NEW)
    index_rebuild()

    output = run_command(
        "--new",
        "--preset",
        HERO,
        "--size",
        "0.5K",
        "--references",
        "2",
        "--wait",
        "--timeout",
        "120",
    )

    asset = GeneratedAsset.objects.get()
    assert asset.status == AssetStatus.IN_REVIEW, (asset.last_error, output)
    assert "1/1 finished, 0 failed, cost so far $0.000" in output
    width, height = pixel_size(asset.aspect_ratio, "0.5K")
    assert (
        f"NEW-1  {HERO}  v1       In review  {width}×{height}  $0.000  {asset.image.path}" in output
    )


def test_the_command_refuses_a_user_without_the_request_permission(products):
    from django.contrib.auth.models import Group, User

    reviewer = User.objects.create_user("rev2")
    reviewer.groups.add(Group.objects.get(name="Reviewer"))
    with pytest.raises(CommandError, match="may not request promo images"):
        run_command("--sku", "NEW-1", "--preset", "Storefront hero", "--user", "rev2")


def test_the_command_needs_a_user_when_four_eyes_is_on(products, settings):
    settings.REVIEW_FOUR_EYES = True
    with pytest.raises(CommandError, match="REVIEW_FOUR_EYES is on: name who requests the batch"):
        run_command("--new", "--preset", HERO)
    assert not GenerationBatch.objects.exists()


def test_make_renditions_fills_in_images_stored_before_renditions_existed(finished_asset):
    assert not finished_asset.thumbnail
    out = io.StringIO()
    call_command("make_renditions", stdout=out)
    finished_asset.refresh_from_db()
    assert finished_asset.thumbnail and finished_asset.preview
    assert "Made the renditions of 1 image(s)." in out.getvalue()


def test_the_asset_list_filters_by_any_batch_but_lists_only_recent_ones(
    merchandiser_client, running_batch
):
    GenerationBatch.objects.bulk_create([GenerationBatch(size_tier="1K") for _ in range(40)])
    url = reverse("admin:generation_generatedasset_changelist")

    listed = merchandiser_client.get(url + "?status=all").content.decode()
    chosen = merchandiser_client.get(url + f"?status=all&batch__id__exact={running_batch.pk}")

    assert listed.count("batch__id__exact=") <= 16  # the recent batches, not all 41
    assert chosen.status_code == 200 and len(chosen.context["cl"].result_list) == 3
    assert f"Batch {running_batch.pk} (" in chosen.content.decode()  # the chosen one is shown


def test_the_batch_page_shows_the_pace_time_left_and_the_rate_limits_share(
    merchandiser_client, running_batch
):
    GenerationBatch.objects.filter(pk=running_batch.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    done = running_batch.assets.get(status=AssetStatus.IN_REVIEW)
    GeneratedAsset.objects.filter(pk=done.pk).update(
        timings={"analyse": 5.0, "image": 15.0}, rate_wait_seconds=5.0
    )
    url = reverse("admin:generation_generationbatch_progress", args=[running_batch.pk])

    counts = merchandiser_client.get(url).json()["counts"]

    assert counts["throughput"] == "0.1 images a minute"  # one finished in ten minutes
    assert counts["time_left"].startswith("about 10 min")  # one left at that pace
    assert counts["rate_wait"] == "5 s (25% of its images' step time)"
    assert "limits" in counts
    page = merchandiser_client.get(
        reverse("admin:generation_generationbatch_change", args=[running_batch.pk])
    ).content.decode()
    assert '<strong data-count="throughput">0.1 images a minute</strong>' in page
    assert 'Waited for the provider\'s rate limit: <span data-count="rate_wait">5 s (25%' in page


# --- variants and names on the batch page and in the lists ---------------------------------


@pytest.fixture
def two_variant_batch(products):
    """NEW-1 in two variants: one passed QA, one flagged for its colour."""
    Product.objects.filter(sku="NEW-1").update(name="Camel <wrap> dress")
    batch = batch_create(
        user=None,
        request=BatchRequest([products[0]], [preset(HERO)], "1K", 1, variants=2),
        estimated_cost=Decimal("0.144"),
    )
    first, second = batch.assets.order_by("variant")
    GeneratedAsset.objects.filter(pk=first.pk).update(
        status=AssetStatus.IN_REVIEW,
        qa_status="passed",
        qa_checks=[{"name": "garment_fidelity", "passed": True, "score": 0.9, "note": ""}],
        cost=Decimal("0.072"),
    )
    GeneratedAsset.objects.filter(pk=second.pk).update(
        status=AssetStatus.IN_REVIEW,
        qa_status="flagged",
        qa_checks=[{"name": "garment_fidelity", "passed": False, "score": 0.2, "note": "red"}],
        cost=Decimal("0.075"),
    )
    return batch


def test_the_batch_page_tells_two_variants_apart_by_variant_qa_and_cost(
    merchandiser_client, two_variant_batch
):
    url = reverse("admin:generation_generationbatch_change", args=[two_variant_batch.pk])
    progress = reverse("admin:generation_generationbatch_progress", args=[two_variant_batch.pk])

    html = page_text(merchandiser_client.get(url))
    rows = merchandiser_client.get(progress).json()["assets"]

    assert [(r["variant"], r["version"], r["qa"], r["cost"]) for r in rows] == [
        (1, "v1", "QA passed", "$0.072"),
        (2, "v1", "QA flagged: garment fidelity", "$0.075"),
    ]
    for row in rows:
        assert (
            f'<td data-field="variant">{row["variant"]}</td> <td data-field="version">v1</td>'
            in html
        )
        assert f'<td data-field="qa">{row["qa"]}</td> <td data-field="cost">{row["cost"]}</td>' in (
            html
        )
    assert "<th>Variant</th><th>Version</th>" in html and "<th>Quality check</th>" in html
    assert "Camel &lt;wrap&gt; dress" in html and "<wrap>" not in html


def test_the_asset_list_and_the_gallery_show_the_products_name(
    merchandiser_client, two_variant_batch
):
    assets = reverse("admin:generation_generatedasset_changelist")
    gallery = reverse("admin:generation_generatedasset_gallery")

    listed = merchandiser_client.get(assets).content.decode()
    shown = merchandiser_client.get(gallery).content.decode()
    found = merchandiser_client.get(assets, {"q": "wrap"}).context["cl"].result_list
    narrowed = merchandiser_client.get(gallery, {"product": "camel"}).context["assets"]

    assert "<strong>NEW-1</strong> · v1.1<br>Camel &lt;wrap&gt; dress<br><small>" in listed
    assert "Camel &lt;wrap&gt; dress" in shown and "<wrap>" not in shown
    assert len(found) == 2 and len(narrowed) == 2
