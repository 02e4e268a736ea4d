"""Review, roles, publishing with AI provenance, and the published feed."""

import csv
import io
from decimal import Decimal

import dramatiq
import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from generation.models import (
    AssetEvent,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
)
from generation.provenance import TRAINED_ALGORITHMIC_MEDIA, read_xmp
from generation.review import (
    ReviewError,
    asset_approve,
    asset_publish,
    asset_regenerate,
    asset_reject,
    asset_unpublish,
)
from generation.selectors import next_in_queue
from tests.factories import make_product

pytestmark = pytest.mark.django_db


def user_in(group: str, username: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def merchandiser():
    return user_in("Merchandiser", "merch")


@pytest.fixture
def reviewer():
    return user_in("Reviewer", "rev")


def png_bytes(size=(96, 128)) -> bytes:
    image = Image.new("RGB", size, "white")
    image.paste((200, 30, 60), (10, 10, size[0] - 10, size[1] - 10))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_asset(
    *, sku="NEW1", preset_name="Storefront hero", status=AssetStatus.IN_REVIEW, requested_by=None
) -> GeneratedAsset:
    from catalog.models import Product

    product = Product.objects.filter(sku=sku).first() or make_product(sku)
    preset = ChannelPreset.objects.get(name=preset_name)
    batch = GenerationBatch.objects.create(requested_by=requested_by, size_tier="1K")
    version = GeneratedAsset.objects.filter(product=product, preset=preset).count() + 1
    asset = GeneratedAsset.objects.create(
        batch=batch,
        product=product,
        preset=preset,
        version=version,
        status=status,
        aspect_ratio=preset.aspect_ratio,
        size_tier="1K",
        style_prompt="soft light",
        generation_prompt="a model in a park",
        image_model="google/gemini-3.1-flash-image-preview",
        width=96,
        height=128,
        cost=Decimal("0.067"),
    )
    asset.image.save(f"{sku}-v{version}.png", ContentFile(png_bytes()))
    return asset


# --- roles ---------------------------------------------------------------------------------


def test_roles_are_created_with_their_permissions(merchandiser, reviewer):
    assert merchandiser.has_perm("catalog.import_products") and merchandiser.has_perm(
        "generation.request_promos"
    )
    assert not merchandiser.has_perm("generation.review_asset")
    assert not merchandiser.has_perm("generation.publish_asset")
    assert reviewer.has_perm("generation.review_asset") and reviewer.has_perm(
        "generation.publish_asset"
    )
    assert not reviewer.has_perm("generation.request_promos")


@pytest.mark.parametrize(
    "action",
    [
        lambda a, u: asset_approve(asset=a, user=u),
        lambda a, u: asset_reject(asset=a, user=u, reason="label visible"),
        lambda a, u: asset_regenerate(asset=a, user=u, feedback="no label"),
    ],
)
def test_a_merchandiser_cannot_review(merchandiser, action):
    asset = make_asset()
    with pytest.raises(PermissionDenied):
        action(asset, merchandiser)
    assert GeneratedAsset.objects.get(pk=asset.pk).status == AssetStatus.IN_REVIEW


@pytest.mark.parametrize("publish", [asset_publish, asset_unpublish])
def test_a_merchandiser_cannot_publish_or_unpublish(merchandiser, publish):
    asset = make_asset(
        status=AssetStatus.APPROVED if publish is asset_publish else AssetStatus.PUBLISHED
    )
    with pytest.raises(PermissionDenied):
        publish(asset=asset, user=merchandiser)


# --- decisions -----------------------------------------------------------------------------


def test_approving_records_who_and_when(reviewer):
    asset = asset_approve(asset=make_asset(), user=reviewer, note="looks right")

    assert asset.status == AssetStatus.APPROVED and asset.reviewed_by == reviewer
    event = AssetEvent.objects.filter(asset=asset).last()
    assert (event.from_status, event.to_status, event.user, event.note) == (
        "in_review",
        "approved",
        reviewer,
        "looks right",
    )


def test_rejecting_needs_a_reason(reviewer):
    asset = make_asset()
    with pytest.raises(ReviewError, match="needs a reason"):
        asset_reject(asset=asset, user=reviewer, reason="   ")

    asset = asset_reject(asset=asset, user=reviewer, reason="sleeve pattern changed")
    assert (
        asset.status == AssetStatus.REJECTED and asset.rejection_reason == "sleeve pattern changed"
    )


def test_only_images_in_review_can_be_approved(reviewer):
    with pytest.raises(ReviewError, match="failed"):
        asset_approve(asset=make_asset(status=AssetStatus.FAILED), user=reviewer)


def test_four_eyes_rule_stops_approving_your_own_batch(settings):
    settings.REVIEW_FOUR_EYES = True
    both = user_in("Reviewer", "both")
    both.groups.add(Group.objects.get(name="Merchandiser"))
    own = make_asset(requested_by=both)

    with pytest.raises(ReviewError, match="Four-eyes"):
        asset_approve(asset=own, user=User.objects.get(pk=both.pk))
    assert (
        asset_approve(asset=own, user=user_in("Reviewer", "other")).status == AssetStatus.APPROVED
    )


def test_regenerating_makes_a_linked_new_version_with_the_feedback(
    reviewer, broker, django_capture_on_commit_callbacks
):
    old = make_asset()
    with django_capture_on_commit_callbacks(execute=True):
        new = asset_regenerate(asset=old, user=reviewer, feedback="remove the neck label")

    old.refresh_from_db()
    assert (new.version, new.previous_version, new.feedback) == (2, old, "remove the neck label")
    assert new.status == AssetStatus.QUEUED and new.style_prompt == old.style_prompt
    assert old.status == AssetStatus.REJECTED and "Regenerated as v2" in old.events.last().note
    assert broker.queues["generation-interactive"].qsize() == 1  # ahead of any bulk work


def test_next_in_queue_walks_the_review_queue_in_order():
    first, second, third = make_asset(sku="A"), make_asset(sku="B"), make_asset(sku="C")
    assert next_in_queue(first) == second and next_in_queue(second) == third
    assert next_in_queue(third) == first


# --- publishing ----------------------------------------------------------------------------


def test_published_png_carries_ai_provenance_at_a_stable_url(reviewer):
    asset = asset_publish(asset=asset_approve(asset=make_asset(), user=reviewer), user=reviewer)

    assert asset.status == AssetStatus.PUBLISHED and asset.published_at
    assert asset.published_image.name == f"published/NEW1/preset-{asset.preset_id}.png"
    with default_storage.open(asset.published_image.name, "rb") as handle:
        xmp = read_xmp(handle.read())
    assert (
        f"<Iptc4xmpExt:DigitalSourceType>{TRAINED_ALGORITHMIC_MEDIA}</Iptc4xmpExt:DigitalSourceType>"
        in xmp
    )
    assert "gemini-3.1-flash-image-preview" in xmp


def test_an_offline_preview_says_what_it_is_and_is_published_only_when_allowed(reviewer, settings):
    asset = asset_approve(asset=make_asset(), user=reviewer)
    GeneratedAsset.objects.filter(pk=asset.pk).update(
        offline=True, image_model="offline-compositor-v1"
    )
    asset.refresh_from_db()
    settings.PUBLISH_OFFLINE_PREVIEWS = False
    with pytest.raises(ReviewError, match="offline preview .* PUBLISH_OFFLINE_PREVIEWS"):
        asset_publish(asset=asset, user=reviewer)

    settings.PUBLISH_OFFLINE_PREVIEWS = True
    asset = asset_publish(asset=asset, user=reviewer)

    with default_storage.open(asset.published_image.name, "rb") as handle:
        xmp = read_xmp(handle.read())
    assert "trainedAlgorithmicMedia" not in xmp
    assert "digitalsourcetype/composite</Iptc4xmpExt:DigitalSourceType>" in xmp
    assert "without a generative model" in xmp


def test_republishing_a_channel_keeps_its_url_and_retires_the_old_image(reviewer):
    first = asset_publish(asset=asset_approve(asset=make_asset(), user=reviewer), user=reviewer)
    second = asset_publish(asset=asset_approve(asset=make_asset(), user=reviewer), user=reviewer)

    first.refresh_from_db()
    assert second.published_image.name == f"published/NEW1/preset-{second.preset_id}.png"
    assert first.status == AssetStatus.APPROVED and not first.published_image


def test_unpublishing_removes_the_file(reviewer, django_capture_on_commit_callbacks):
    asset = asset_publish(asset=asset_approve(asset=make_asset(), user=reviewer), user=reviewer)
    name = asset.published_image.name

    with django_capture_on_commit_callbacks(execute=True):
        asset = asset_unpublish(asset=asset, user=reviewer)

    assert asset.status == AssetStatus.APPROVED and not default_storage.exists(name)


# --- the feed ------------------------------------------------------------------------------


@pytest.fixture
def published(reviewer):
    shown = asset_publish(
        asset=asset_approve(asset=make_asset(sku="NEW1"), user=reviewer), user=reviewer
    )
    asset_approve(asset=make_asset(sku="NEW2"), user=reviewer)  # approved, not published
    make_asset(sku="NEW3")  # still in review
    return shown


def test_feed_is_closed_to_anonymous_visitors(client, published):
    for url in ("/feeds/published.csv", "/feeds/published.json"):
        assert client.get(url).status_code == 401
    assert client.get("/feeds/published.json?token=guess").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token",
        "Bearer",
        "Basic Y2hhbm5lbDpzeW5j",
        "Bearer tökén-ünïcode",
        "Bearer a\x01b",
    ],
)
def test_a_wrong_or_malformed_token_gets_401(client, settings, published, header):
    settings.FEED_TOKENS = ["channel-sync-token"]
    assert client.get("/feeds/published.json", HTTP_AUTHORIZATION=header).status_code == 401


def test_the_token_is_read_from_the_header_only(client, settings, published):
    settings.FEED_TOKENS = ["channel-sync-token"]
    assert client.get("/feeds/published.json?token=channel-sync-token").status_code == 401


def test_the_feed_filters_by_channel(client, settings, published):
    settings.FEED_TOKENS = ["t"]
    auth = {"HTTP_AUTHORIZATION": "Bearer t"}
    assert (
        len(client.get("/feeds/published.json?preset=Storefront hero", **auth).json()["images"])
        == 1
    )
    assert client.get("/feeds/published.json?preset=Web banner", **auth).json() == {"images": []}


def test_csv_cells_that_would_start_a_formula_are_neutralized(client, reviewer, published):
    ChannelPreset.objects.filter(pk=published.preset_id).update(name='=HYPERLINK("http://x","y")')
    client.force_login(reviewer)

    rows = list(csv.DictReader(io.StringIO(client.get("/feeds/published.csv").content.decode())))

    assert rows[0]["preset"] == '\'=HYPERLINK("http://x","y")'


def test_a_published_image_is_public_at_a_stable_url_until_unpublished(
    client, reviewer, published, django_capture_on_commit_callbacks
):
    url = f"/published/NEW1/preset-{published.preset_id}.png"
    response = client.get(url)  # anonymous
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")

    with django_capture_on_commit_callbacks(execute=True):
        asset_unpublish(asset=published, user=reviewer)

    assert client.get(url).status_code == 404


def test_private_files_need_a_staff_login_with_the_view_permission(client, reviewer, published):
    private = [
        published.image.url,
        published.product.image.url,
        published.product.thumbnail.url,
        published.published_image.url,
    ]
    assert all(url.startswith("/media/") for url in private)
    for url in private:
        assert client.get(url).status_code == 404  # anonymous: nothing, not even a name
    client.force_login(reviewer)
    assert [client.get(url).status_code for url in private] == [200, 200, 200, 200]
    assert client.get("/media/answers/asset-1/image.bin").status_code == 404
    assert client.get("/media/products/../promos/x.png").status_code == 404


def test_feed_lists_exactly_the_published_images_for_a_token(client, settings, published):
    settings.FEED_TOKENS = ["channel-sync-token"]

    data = client.get(
        "/feeds/published.json", HTTP_AUTHORIZATION="Bearer channel-sync-token"
    ).json()

    assert data == {
        "images": [
            {
                "sku": "NEW1",
                "preset": "Storefront hero",
                "aspect_ratio": "3:4",
                "width": 96,
                "height": 128,
                "url": f"http://testserver/published/NEW1/preset-{published.preset_id}.png",
                "published_at": published.published_at.isoformat(),
                "offline": False,
                "name": "",
            }
        ]
    }


def test_csv_feed_for_a_logged_in_reviewer(client, reviewer, published):
    client.force_login(reviewer)

    response = client.get("/feeds/published.csv")

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert [(r["sku"], r["preset"], r["width"], r["height"]) for r in rows] == [
        ("NEW1", "Storefront hero", "96", "128")
    ]
    assert rows[0]["url"] == f"http://testserver/published/NEW1/preset-{published.preset_id}.png"


def test_the_feed_carries_the_products_name_after_the_fields_it_had(client, reviewer, published):
    from catalog.models import Product

    Product.objects.filter(sku="NEW1").update(name="=Camel wrap dress")
    client.force_login(reviewer)

    lines = client.get("/feeds/published.csv").content.decode().splitlines()
    images = client.get("/feeds/published.json").json()["images"]

    assert lines[0] == "sku,preset,aspect_ratio,width,height,url,published_at,offline,name"
    assert next(csv.DictReader(io.StringIO("\n".join(lines))))["name"] == "'=Camel wrap dress"
    assert images[0]["name"] == "=Camel wrap dress"  # JSON is not run by a spreadsheet


# --- the loop closes -------------------------------------------------------------------------


def test_a_rejection_is_mailed_to_the_requester_with_its_reason(
    reviewer, broker, django_capture_on_commit_callbacks, mailoutbox
):
    from generation.tasks import notify_rejection

    requester = user_in("Merchandiser", "merch2")
    requester.email = "merch2@example.com"
    requester.save()
    asset = make_asset(requested_by=requester)
    with django_capture_on_commit_callbacks(execute=True):
        asset_reject(asset=asset, user=reviewer, reason="The sleeves are the wrong length")
    [message] = broker.queues["default"].queue  # sent after the decision committed
    notify_rejection.fn(*dramatiq.Message.decode(message).args)

    [mail] = mailoutbox
    assert mail.to == ["merch2@example.com"] and "NEW1" in mail.subject
    assert "Reason: The sleeves are the wrong length" in mail.body


def test_a_batch_from_the_shell_has_nobody_to_tell(reviewer, mailoutbox):
    from generation.notifications import rejection_notify

    asset = asset_reject(asset=make_asset(), user=reviewer, reason="Too dark")
    assert rejection_notify(asset_id=asset.pk) is False and mailoutbox == []


def test_a_new_products_lifecycle_follows_its_published_images(
    reviewer, django_capture_on_commit_callbacks
):
    from catalog.models import Product

    asset = asset_approve(asset=make_asset(), user=reviewer)
    assert asset.product.lifecycle == Product.Lifecycle.NEW
    asset = asset_publish(asset=asset, user=reviewer)
    assert Product.objects.get(pk=asset.product_id).lifecycle == Product.Lifecycle.PUBLISHED
    with django_capture_on_commit_callbacks(execute=True):
        asset_unpublish(asset=asset, user=reviewer)
    assert Product.objects.get(pk=asset.product_id).lifecycle == Product.Lifecycle.NEW


def test_a_user_is_created_with_a_role_in_one_step(client):
    from django.contrib.auth.models import User
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "create_user", "rita", "--role", "reviewer", "--email", "rita@example.com", stdout=out
    )

    password = out.getvalue().split("Password: ")[1].strip()
    rita = User.objects.get(username="rita")
    assert rita.is_staff and [g.name for g in rita.groups.all()] == ["Reviewer"]
    # The login form, as Rita would (axes checks the lockout with the request).
    client.post("/admin/login/", {"username": "rita", "password": password})
    assert "_auth_user_id" in client.session
    assert client.get("/admin/generation/generatedasset/").status_code == 200
