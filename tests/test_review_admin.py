"""The review queue in the admin: every decision path, and who may take it."""

import io
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from generation.models import AssetStatus, GeneratedAsset, Lane
from tests.test_review import make_asset, merchandiser, reviewer  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.django_db
QUEUE = reverse("admin:generation_generatedasset_changelist")


def decide(client, asset, decision, text=""):
    return client.post(
        reverse("admin:generation_generatedasset_decide", args=[asset.pk]),
        {"decision": decision, "text": text},
    )


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

    html = client.get(
        reverse("admin:generation_generatedasset_change", args=[asset.pk])
    ).content.decode()

    panel = html[html.index('id="review-panel"') :]
    assert asset.product.image.url in panel and asset.image.url in panel
    assert "soft light" in panel and "a model in a park" in panel
    assert (
        'value="approve"' in panel and 'value="reject"' in panel and 'value="regenerate"' in panel
    )


def test_approving_moves_on_to_the_next_image_and_logs_it(client, reviewer):
    first, second = make_asset(sku="A"), make_asset(sku="B")
    client.force_login(reviewer)

    response = decide(client, first, "approve")

    assert response.url == reverse("admin:generation_generatedasset_change", args=[second.pk])
    assert status(first) == AssetStatus.APPROVED
    entry = LogEntry.objects.get()
    assert (
        entry.user == reviewer
        and entry.object_id == str(first.pk)
        and "approve" in entry.get_change_message()
    )


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
    client.post(
        QUEUE, {"action": "reject_selected", "_selected_action": [b.pk, c.pk], "reason": "blurry"}
    )

    assert [status(x) for x in (a, b, c)] == ["approved", "rejected", "rejected"]
    assert LogEntry.objects.count() == 3


@pytest.mark.parametrize(
    "decision,start",
    [
        ("approve", AssetStatus.IN_REVIEW),
        ("reject", AssetStatus.IN_REVIEW),
        ("regenerate", AssetStatus.IN_REVIEW),
        ("recheck", AssetStatus.IN_REVIEW),
        ("publish", AssetStatus.APPROVED),
        ("unpublish", AssetStatus.PUBLISHED),
    ],
)
def test_a_merchandiser_cannot_decide_through_the_asset_page(client, merchandiser, decision, start):
    asset = make_asset(status=start)
    client.force_login(merchandiser)

    page = client.get(
        reverse("admin:generation_generatedasset_change", args=[asset.pk])
    ).content.decode()
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


# --- the gallery -----------------------------------------------------------------------------

GALLERY = "/admin/generation/generatedasset/gallery/"


def with_renditions(asset):
    from generation.renditions import renditions_make

    with asset.image.open("rb") as handle:
        names = renditions_make(asset, handle.read())
    GeneratedAsset.objects.filter(pk=asset.pk).update(**names)
    asset.refresh_from_db()
    return asset


def test_the_gallery_shows_the_queue_as_previews_and_filters_it(client, reviewer):
    shown = with_renditions(make_asset(sku="NEW1"))
    other = with_renditions(make_asset(sku="NEW2", preset_name="Web banner"))
    client.force_login(reviewer)

    html = client.get(GALLERY).content.decode()
    assert shown.thumbnail.url in html and other.thumbnail.url in html
    assert shown.image.url not in html  # never the full-size image
    assert "A approve · R reject with a reason" in html
    filtered = client.get(GALLERY, {"product": "NEW2"}).content.decode()
    assert other.thumbnail.url in filtered and shown.thumbnail.url not in filtered
    by_preset = client.get(GALLERY, {"preset": str(shown.preset_id)}).content.decode()
    assert shown.thumbnail.url in by_preset and other.thumbnail.url not in by_preset


def test_the_gallery_needs_the_view_permission(client, db):
    from tests.test_review import user_in

    client.force_login(user_in("Merchandiser", "m"))  # may view assets: sees the gallery
    assert client.get(GALLERY).status_code == 200
    client.logout()
    assert client.get(GALLERY).status_code == 302  # to the login page


def test_a_decision_asked_for_as_json_stays_on_the_page(client, reviewer):
    asset = make_asset()
    client.force_login(reviewer)
    url = f"/admin/generation/generatedasset/{asset.pk}/decide/"

    missing = client.post(url, {"decision": "reject", "text": ""}, HTTP_ACCEPT="application/json")
    assert missing.status_code == 409 and "needs a reason" in missing.json()["error"]
    done = client.post(
        url, {"decision": "reject", "text": "Too dark"}, HTTP_ACCEPT="application/json"
    )
    assert done.json() == {
        "ok": True,
        "status": "rejected",
        "label": "Rejected",
        "set_aside": [],
        "message": f"{asset}: rejected.",
    }


def test_a_gallery_page_of_100_images_weighs_under_3_mb(client, reviewer, capsys):
    from PIL import Image, ImageDraw

    from generation.renditions import renditions_make

    # A busy 1024 px image (the worst case for JPEG) for every one of the 100 cards.
    photo = Image.effect_noise((1024, 1024), 40).convert("RGB")
    ImageDraw.Draw(photo).ellipse((200, 100, 800, 950), fill=(180, 30, 40))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    content = buffer.getvalue()
    assets = [make_asset(sku=f"NEW{n}") for n in range(100)]
    for asset in assets:
        GeneratedAsset.objects.filter(pk=asset.pk).update(**renditions_make(asset, content))
    client.force_login(reviewer)

    page = client.get(GALLERY)
    html = page.content
    images = re.findall(r'<img src="(/media/[^"]+)"', html.decode())
    weight = len(html) + sum(len(b"".join(client.get(src).streaming_content)) for src in images)

    assert len(images) == 100
    with capsys.disabled():
        print(
            f"\ngallery page of 100 images: {weight / 1e6:.2f} MB (HTML {len(html) / 1e3:.0f} kB)"
        )
    assert weight <= 3_000_000


def test_regenerating_opens_the_new_version_which_waits_to_be_made(client, reviewer):
    asset = make_asset()
    client.force_login(reviewer)

    response = client.post(
        f"/admin/generation/generatedasset/{asset.pk}/decide/",
        {"decision": "regenerate", "text": "Brighter, please"},
    )

    new = GeneratedAsset.objects.get(previous_version=asset)
    assert response.url == f"/admin/generation/generatedasset/{new.pk}/change/"
    page = client.get(response.url).content.decode()
    assert "Being made (queued)" in page and "generation/reload-while-made.js" in page
    assert 'id="versions"' in page and "v1" in page and "v2" in page


def test_a_reviewer_asks_for_a_new_quality_check_from_the_asset_page_and_the_list(client, reviewer):
    asset, other = make_asset(sku="RECHECK-1"), make_asset(sku="RECHECK-2")
    client.force_login(reviewer)
    page = client.get(f"/admin/generation/generatedasset/{asset.pk}/change/").content.decode()
    assert 'value="recheck"' in page and "Check quality again" in page

    response = client.post(
        f"/admin/generation/generatedasset/{asset.pk}/decide/", {"decision": "recheck"}
    )
    asset.refresh_from_db()
    assert response.url == f"/admin/generation/generatedasset/{asset.pk}/change/"
    assert (asset.status, asset.lane) == (AssetStatus.CHECKING, Lane.INTERACTIVE)
    again = client.post(
        f"/admin/generation/generatedasset/{asset.pk}/decide/",
        {"decision": "recheck"},
        HTTP_ACCEPT="application/json",
    )
    assert again.status_code == 409  # it is being checked: not in review any more

    response = client.post(
        "/admin/generation/generatedasset/",
        {"action": "recheck_selected", "_selected_action": [other.pk], "status": "all"},
        follow=True,
    )
    other.refresh_from_db()
    assert other.status == AssetStatus.CHECKING
    assert "1 image(s) sent for a new quality check." in response.content.decode()
