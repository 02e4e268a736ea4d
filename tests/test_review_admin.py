"""The review queue in the admin: every decision path, and who may take it."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from generation.models import AssetStatus, GeneratedAsset
from tests.test_review import make_asset, merchandiser, reviewer  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.django_db
QUEUE = reverse("admin:generation_generatedasset_changelist")


def decide(client, asset, decision, text=""):
    return client.post(reverse("admin:generation_generatedasset_decide", args=[asset.pk]),
                       {"decision": decision, "text": text})


def status(asset) -> str:
    return GeneratedAsset.objects.get(pk=asset.pk).status


def test_queue_shows_images_in_review_by_default(client, reviewer):
    waiting = make_asset(sku="A")
    make_asset(sku="B", status=AssetStatus.APPROVED)
    client.force_login(reviewer)

    queue = client.get(QUEUE)
    everything = client.get(QUEUE, {"status": "all"})

    assert list(queue.context["cl"].result_list) == [waiting]
    assert len(everything.context["cl"].result_list) == 2


def test_asset_page_shows_flat_lay_references_and_image_side_by_side(client, reviewer):
    asset = make_asset()
    client.force_login(reviewer)

    html = client.get(reverse("admin:generation_generatedasset_change", args=[asset.pk])).content.decode()

    panel = html[html.index('id="review-panel"'):]
    assert asset.product.image.url in panel and asset.image.url in panel
    assert "soft light" in panel and "a model in a park" in panel
    assert 'value="approve"' in panel and 'value="reject"' in panel and 'value="regenerate"' in panel


def test_approving_moves_on_to_the_next_image_and_logs_it(client, reviewer):
    first, second = make_asset(sku="A"), make_asset(sku="B")
    client.force_login(reviewer)

    response = decide(client, first, "approve")

    assert response.url == reverse("admin:generation_generatedasset_change", args=[second.pk])
    assert status(first) == AssetStatus.APPROVED
    entry = LogEntry.objects.get()
    assert entry.user == reviewer and entry.object_id == str(first.pk) and "approve" in entry.get_change_message()


def test_rejecting_without_a_reason_is_refused(client, reviewer):
    asset = make_asset()
    client.force_login(reviewer)

    decide(client, asset, "reject", "   ")
    assert status(asset) == AssetStatus.IN_REVIEW
    decide(client, asset, "reject", "the print is wrong")
    assert GeneratedAsset.objects.get(pk=asset.pk).rejection_reason == "the print is wrong"


def test_publish_then_unpublish_from_the_asset_page(client, reviewer):
    asset = make_asset(status=AssetStatus.APPROVED)
    client.force_login(reviewer)

    decide(client, asset, "publish")
    assert status(asset) == AssetStatus.PUBLISHED
    product_page = client.get(reverse("admin:catalog_product_change", args=[asset.product.pk]))
    assert "Storefront hero (3:4)" in product_page.content.decode()

    decide(client, asset, "unpublish")
    assert status(asset) == AssetStatus.APPROVED


def test_bulk_approve_and_bulk_reject_with_a_reason(client, reviewer):
    a, b, c = make_asset(sku="A"), make_asset(sku="B"), make_asset(sku="C")
    client.force_login(reviewer)

    client.post(QUEUE, {"action": "approve_selected", "_selected_action": [a.pk]})
    page = client.post(QUEUE, {"action": "reject_selected", "_selected_action": [b.pk, c.pk]})
    assert "reason" in page.content.decode() and status(b) == AssetStatus.IN_REVIEW
    client.post(QUEUE, {"action": "reject_selected", "_selected_action": [b.pk, c.pk], "reason": "blurry"})

    assert [status(x) for x in (a, b, c)] == ["approved", "rejected", "rejected"]
    assert LogEntry.objects.count() == 3


@pytest.mark.parametrize("decision,start", [
    ("approve", AssetStatus.IN_REVIEW), ("reject", AssetStatus.IN_REVIEW),
    ("regenerate", AssetStatus.IN_REVIEW), ("publish", AssetStatus.APPROVED),
    ("unpublish", AssetStatus.PUBLISHED),
])
def test_a_merchandiser_cannot_decide_through_the_asset_page(client, merchandiser, decision, start):
    asset = make_asset(status=start)
    client.force_login(merchandiser)

    page = client.get(reverse("admin:generation_generatedasset_change", args=[asset.pk])).content.decode()
    response = decide(client, asset, decision, "because")

    assert 'name="decision"' not in page
    assert response.status_code == 403 and status(asset) == start


@pytest.mark.parametrize("action", ["approve_selected", "reject_selected"])
def test_a_merchandiser_cannot_use_the_bulk_review_actions(client, merchandiser, action):
    asset = make_asset()
    client.force_login(merchandiser)

    listing = client.get(QUEUE).content.decode()
    client.post(QUEUE, {"action": action, "_selected_action": [asset.pk], "reason": "x"})

    assert action not in listing
    assert status(asset) == AssetStatus.IN_REVIEW
