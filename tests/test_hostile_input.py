"""The probe's cases, one by one: crafted ids, NUL and over-long names, over-long reasons, and
a database constraint in the product form. Each answered 500 (or took anything) before; each
now gets a 4xx or a page that says what is wrong. tests/test_crawl.py sends the same kinds of
value to every URL; these say what the person sees."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.urls import reverse

from core.ids import MAX_ID, id_parse, ids_parse
from generation.models import (
    REVIEW_TEXT_MAX_LENGTH,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
)
from tests.factories import make_product

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"
SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() says yes, int() says no
ARABIC_INDIC = "%D9%A1%D9%A2%D9%A3"  # "١٢٣": str.isdigit() says yes, int() reads 123
CRAFTED = [HUGE, SUPERSCRIPT_TWO, ARABIC_INDIC]

REQUEST = reverse("admin:generation_generationbatch_request")
GALLERY = reverse("admin:generation_generatedasset_gallery")
ASSETS = reverse("admin:generation_generatedasset_changelist")


@pytest.fixture
def asset_in_review(admin_user):
    product = make_product("NEW-1")
    batch = GenerationBatch.objects.create(requested_by=None, size_tier="1K")
    preset = ChannelPreset.objects.order_by("pk").first()
    return GeneratedAsset.objects.create(
        batch=batch,
        product=product,
        preset=preset,
        status=AssetStatus.IN_REVIEW,
        aspect_ratio=preset.aspect_ratio,
        size_tier="1K",
    )


def test_id_parse_takes_ascii_digits_within_bigint_only():
    assert id_parse("42") == 42 and id_parse(str(MAX_ID)) == MAX_ID
    for value in ["", "0", "-1", "²", "١٢٣", "1_000", " 1", "1e3", HUGE, str(MAX_ID + 1), None]:
        assert id_parse(value) is None, value
    assert ids_parse(["3", "²", "x", "4"]) == [3, 4]


@pytest.mark.parametrize("value", CRAFTED)
def test_promo_request_page_refuses_a_crafted_selection(admin_client, value):
    """Was a 500 (OverflowError, ValueError); now the 400 page."""
    response = admin_client.get(f"{REQUEST}?{ACTION_CHECKBOX_NAME}={value}")
    assert response.status_code == 400
    assert "could not be understood" in response.content.decode()


@pytest.mark.parametrize("value", CRAFTED)
@pytest.mark.parametrize("parameter", ["batch", "preset"])
def test_gallery_ignores_a_crafted_batch_or_preset(admin_client, asset_in_review, parameter, value):
    """Was a 500; now the gallery, as for any value that is not an id: unfiltered."""
    response = admin_client.get(f"{GALLERY}?{parameter}={value}")
    assert response.status_code == 200
    assert list(response.context["assets"]) == [asset_in_review]


@pytest.mark.parametrize("value", CRAFTED)
def test_asset_list_shows_no_asset_for_a_crafted_batch(admin_client, asset_in_review, value):
    """Was a 500; now the list with no rows, as for a batch that does not exist."""
    response = admin_client.get(f"{ASSETS}?status=all&batch__id__exact={value}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def test_asset_list_filters_a_real_batch(admin_client, asset_in_review):
    response = admin_client.get(f"{ASSETS}?status=all&batch__id__exact={asset_in_review.batch_id}")
    assert response.context["cl"].result_count == 1


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, "%00", "x" * 300])
def test_admin_action_refuses_a_crafted_selection(admin_client, asset_in_review, value):
    """Django's own action code filtered by the selection as sent: a 500; now a 400."""
    response = admin_client.post(
        ASSETS,
        f"action=reject_selected&{ACTION_CHECKBOX_NAME}={value}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    asset_in_review.refresh_from_db()
    assert asset_in_review.status == AssetStatus.IN_REVIEW


def test_date_hierarchy_refuses_an_overflowing_year(admin_client):
    response = admin_client.get(
        reverse("admin:core_providercall_changelist") + f"?created_at__year={HUGE}"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["products/%00", "products/" + "a" * 300, "products/a%00b.jpg"])
def test_private_media_answers_404_or_400_for_names_no_file_can_have(admin_client, name):
    """Was a 500 (ValueError: embedded null byte; OSError: file name too long)."""
    response = admin_client.get(f"/media/{name}")
    assert response.status_code in (400, 404)


def test_private_media_still_serves_a_real_file(admin_client):
    product = make_product("REAL-1")
    response = admin_client.get(f"/media/{product.image.name}")
    assert response.status_code == 200


def test_api_asset_list_refuses_an_overflowing_batch(client, admin_user):
    from core.api_tokens import api_token_create

    _, secret = api_token_create(name="t", owner=admin_user, scopes=["assets:read"])
    response = client.get(f"/api/v1/assets?batch={HUGE}", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 422


def test_api_answers_a_nul_with_a_problem_document(client, admin_user):
    from core.api_tokens import api_token_create

    _, secret = api_token_create(name="t", owner=admin_user, scopes=["products:read"])
    response = client.get("/api/v1/products?category=%00", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "NUL" in response.json()["detail"]


# --- input limits ---------------------------------------------------------------------------

MEGABYTE = "x" * (1024 * 1024)


def test_a_1_mb_rejection_reason_is_refused_on_the_asset_page(admin_client, asset_in_review):
    """Was accepted and stored; now refused with the limit named, the image still in review."""
    response = admin_client.post(
        reverse("admin:generation_generatedasset_decide", args=[asset_in_review.pk]),
        {"decision": "reject", "text": MEGABYTE},
        follow=True,
    )
    assert f"keep it to {REVIEW_TEXT_MAX_LENGTH:,} characters" in response.content.decode()
    asset_in_review.refresh_from_db()
    assert asset_in_review.status == AssetStatus.IN_REVIEW
    assert asset_in_review.rejection_reason == ""


def test_a_1_mb_rejection_reason_is_refused_by_the_bulk_action(admin_client, asset_in_review):
    response = admin_client.post(
        ASSETS,
        {
            "action": "reject_selected",
            ACTION_CHECKBOX_NAME: [str(asset_in_review.pk)],
            "reason": MEGABYTE,
        },
    )
    assert response.status_code == 200
    assert "Ensure this value has at most" in response.content.decode()
    asset_in_review.refresh_from_db()
    assert asset_in_review.status == AssetStatus.IN_REVIEW


@pytest.mark.parametrize(
    "action,body",
    [
        ("reject", {"reason": MEGABYTE}),
        ("regenerate", {"feedback": MEGABYTE}),
        ("approve", {"note": MEGABYTE}),
    ],
)
def test_a_1_mb_text_is_refused_by_the_api(client, admin_user, asset_in_review, action, body):
    from core.api_tokens import api_token_create

    _, secret = api_token_create(
        name="t", owner=admin_user, scopes=["assets:read", "assets:decide"]
    )
    response = client.post(
        f"/api/v1/assets/{asset_in_review.pk}/{action}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 422
    asset_in_review.refresh_from_db()
    assert asset_in_review.status == AssetStatus.IN_REVIEW


def test_a_nul_in_an_api_reason_is_refused(client, admin_user, asset_in_review):
    """PostgreSQL refuses NUL in text: a 500 there; now a 409 saying so, on both databases."""
    from core.api_tokens import api_token_create

    _, secret = api_token_create(
        name="t", owner=admin_user, scopes=["assets:read", "assets:decide"]
    )
    response = client.post(
        f"/api/v1/assets/{asset_in_review.pk}/reject",
        {"reason": "blurry\x00"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 409 and "NUL" in response.json()["detail"]


def test_a_reason_at_the_limit_is_taken(admin_client, asset_in_review):
    admin_client.post(
        reverse("admin:generation_generatedasset_decide", args=[asset_in_review.pk]),
        {"decision": "reject", "text": "y" * REVIEW_TEXT_MAX_LENGTH},
    )
    asset_in_review.refresh_from_db()
    assert asset_in_review.status == AssetStatus.REJECTED


# --- database constraints in words ------------------------------------------------------------


def test_a_negative_price_in_the_product_form_is_told_in_a_sentence(admin_client):
    """Was 'Constraint “product_price_not_negative” is violated.'"""
    product = make_product("OLD-1", price=Decimal("10"))
    url = reverse("admin:catalog_product_change", args=[product.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields if name != "image"}
    data["price"] = "-5"
    response = admin_client.post(url, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "The price cannot be negative" in html
    assert "product_price_not_negative" not in html
    product.refresh_from_db()
    assert product.price == Decimal("10")


def test_every_constraint_has_a_sentence():
    """A constraint without its own message shows its name to the person who broke it."""
    from django.apps import apps

    for model in apps.get_models():
        for constraint in model._meta.constraints:
            assert (
                constraint.violation_error_message != constraint.default_violation_error_message
            ), f"{model._meta.label}.{constraint.name} has no violation_error_message"


@pytest.mark.parametrize("value", [HUGE, "²", "-1"])
def test_group_form_refuses_a_crafted_permission_id(admin_client, value):
    """Django's own many-to-many check let a huge id through to a query that overflowed on
    SQLite (a 500); now the form says the value is not valid."""
    response = admin_client.post(
        reverse("admin:auth_group_add"), {"name": "Crafted", "permissions": [value]}
    )
    assert response.status_code == 200
    assert "is not a valid value" in response.content.decode()
    assert not Group.objects.filter(name="Crafted").exists()
