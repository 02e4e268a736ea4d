"""Feed tokens: made in the admin (or the shell) and shown once, kept as a hash, checked by the
published feed, revoked or expired at once, last use recorded; and the admin's Feeds page."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generation.feed_tokens import feed_token_create, feed_token_revoke
from generation.models import ChannelPreset, FeedToken
from tests.test_review import merchandiser, published, reviewer  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.django_db

FEEDS = reverse("admin:generation_feedtoken_changelist")
ADD = reverse("admin:generation_feedtoken_add")
JSON = "/feeds/published.json"


def revoke_url(token: FeedToken) -> str:
    return reverse("admin:generation_feedtoken_revoke", args=[token.pk])


def read_feed(client, secret: str, url: str = JSON):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}")


def stored_values(token: FeedToken) -> list[str]:
    """Every column of the token's row, as text."""
    row = FeedToken.objects.filter(pk=token.pk).values().get()
    return [str(value) for value in row.values()]


# --- the tokens and the feed -----------------------------------------------------------------


def test_a_new_token_is_kept_only_as_its_sha256(reviewer):
    token, secret = feed_token_create(name="Marketplace upload", user=reviewer)

    assert secret.startswith("feed_") and len(secret) > 40
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:8] and token.created_by == reviewer
    assert not any(secret in value for value in stored_values(token))


def test_the_feed_answers_a_fresh_token(client, published):
    _, secret = feed_token_create(name="Marketplace upload")

    response = read_feed(client, secret)

    assert response.status_code == 200
    assert [row["sku"] for row in response.json()["images"]] == ["NEW1"]
    csv = read_feed(client, secret, "/feeds/published.csv")
    assert csv.status_code == 200 and "NEW1" in csv.content.decode()


def test_a_revoked_token_is_refused_at_once_and_stays_on_record(client, reviewer, published):
    token, secret = feed_token_create(name="Old upload")
    assert read_feed(client, secret).status_code == 200

    assert feed_token_revoke(token=token, user=reviewer)

    assert read_feed(client, secret).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == reviewer
    assert not feed_token_revoke(token=token, user=reviewer)  # once is enough


def test_an_expired_token_is_refused(client, published):
    _, secret = feed_token_create(name="Trial", expires_at=timezone.now() - timedelta(seconds=1))
    _, later = feed_token_create(name="Season", expires_at=timezone.now() + timedelta(days=1))

    assert read_feed(client, secret).status_code == 401
    assert read_feed(client, later).status_code == 200


def test_no_token_or_an_unknown_one_is_refused(client, published):
    _, secret = feed_token_create(name="Marketplace upload")

    assert client.get(JSON).status_code == 401
    assert read_feed(client, secret[:-1] + ("A" if secret[-1] != "A" else "B")).status_code == 401
    assert read_feed(client, hashlib.sha256(secret.encode()).hexdigest()).status_code == 401
    assert client.get(f"{JSON}?token={secret}").status_code == 401  # never from the URL


def test_feed_tokens_from_the_setting_still_open_the_feed(client, settings, published):
    settings.FEED_TOKENS = ["legacy-channel-token"]
    feed_token_create(name="Marketplace upload")

    assert read_feed(client, "legacy-channel-token").status_code == 200
    assert read_feed(client, "another-token").status_code == 401


def test_the_last_use_is_recorded_at_most_once_a_minute(client, published):
    token, secret = feed_token_create(name="Marketplace upload")
    assert token.last_used_at is None

    read_feed(client, secret)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    with CaptureQueriesContext(connection) as queries:
        read_feed(client, secret)
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    token.refresh_from_db()
    assert token.last_used_at == first

    FeedToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    read_feed(client, secret)
    token.refresh_from_db()
    assert token.last_used_at > first


def test_create_feed_token_prints_the_token_alone_on_the_last_line(client, published):
    out = io.StringIO()

    call_command("create_feed_token", "Nightly upload", "--expires-in-days", "30", stdout=out)

    secret = out.getvalue().strip().splitlines()[-1]
    token = FeedToken.objects.get(name="Nightly upload")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert read_feed(client, secret).status_code == 200


# --- the Feeds page ----------------------------------------------------------------------------


def test_making_a_token_in_the_admin_shows_it_once(client, reviewer, published):
    client.force_login(reviewer)

    response = client.post(ADD, {"name": "Marketplace upload"})

    assert response.status_code == 200
    secret = response.context["secret"]
    html = response.content.decode()
    assert secret in html and "shown only this once" in html
    assert "no-store" in response["Cache-Control"]
    token = FeedToken.objects.get(name="Marketplace upload")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.created_by == reviewer and token.expires_at is None
    assert LogEntry.objects.filter(object_id=str(token.pk), action_flag=ADDITION).exists()
    # Never again: not on the list, not on its page, not in a message for the next page.
    for url in (FEEDS, reverse("admin:generation_feedtoken_change", args=[token.pk])):
        page = client.get(url)
        assert page.status_code == 200 and secret not in page.content.decode()
        assert token.prefix in page.content.decode()
    client.logout()
    assert read_feed(client, secret).status_code == 200


def test_a_token_made_in_the_admin_can_expire(client, reviewer):
    client.force_login(reviewer)
    soon = (timezone.localtime() + timedelta(days=7)).replace(second=0, microsecond=0)
    form = client.get(ADD).content.decode()
    assert 'type="datetime-local"' in form and '<label for="id_expires_at"' in form

    client.post(ADD, {"name": "Trial", "expires_at": soon.strftime("%Y-%m-%dT%H:%M")})

    token = FeedToken.objects.get(name="Trial")
    assert token.expires_at == soon


def test_revoking_in_the_admin_asks_first_then_stops_the_token(client, reviewer, published):
    token, secret = feed_token_create(name="Old upload")
    client.force_login(reviewer)

    page = client.get(revoke_url(token))
    assert page.status_code == 200 and "Revoke the token" in page.content.decode()
    assert FeedToken.objects.get(pk=token.pk).revoked_at is None  # a GET changes nothing

    response = client.post(revoke_url(token))

    assert response.status_code == 302 and response["Location"] == FEEDS
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == reviewer
    assert LogEntry.objects.filter(object_id=str(token.pk), action_flag=CHANGE).exists()
    listed = client.get(FEEDS).content.decode()
    assert "Old upload" in listed and "Revoked" in listed
    assert revoke_url(token) not in listed
    again = client.get(revoke_url(token), follow=True)
    assert "was revoked already" in again.content.decode()
    client.logout()
    assert read_feed(client, secret).status_code == 401


def test_revoking_the_selected_tokens_from_the_list(client, reviewer):
    first, _ = feed_token_create(name="One")
    second, _ = feed_token_create(name="Two")
    kept, _ = feed_token_create(name="Three")
    client.force_login(reviewer)

    client.post(FEEDS, {"action": "revoke_selected", "_selected_action": [first.pk, second.pk]})

    revoked = FeedToken.objects.filter(revoked_at__isnull=False)
    assert sorted(revoked.values_list("name", flat=True)) == ["One", "Two"]
    assert FeedToken.objects.get(pk=kept.pk).revoked_at is None
    assert FeedToken.objects.count() == 3  # revoked tokens stay on the record


def test_the_feeds_page_lists_the_whole_feed_and_one_per_preset(client, reviewer, published):
    ChannelPreset.objects.create(name="Old channel", aspect_ratio="1:1", is_active=False)
    client.force_login(reviewer)

    response = client.get(FEEDS)

    html = response.content.decode()
    links = response.context["feed_links"]
    assert links[0].preset is None and links[0].published == 1
    assert links[0].csv == "http://testserver/feeds/published.csv"
    names = [link.preset.name for link in links[1:]]
    assert "Storefront hero" in names and "Old channel" not in names  # inactive, nothing out
    hero = links[1 + names.index("Storefront hero")]
    assert hero.published == 1
    assert hero.csv == "http://testserver/feeds/published.csv?preset=Storefront+hero"
    assert hero.json == "http://testserver/feeds/published.json?preset=Storefront+hero"
    for link in links:
        assert link.csv in html and link.json in html
    # The listed URL reads that channel's images.
    _, secret = feed_token_create(name="Hero upload")
    client.logout()
    filtered = read_feed(client, secret, hero.json.removeprefix("http://testserver"))
    assert [row["preset"] for row in filtered.json()["images"]] == ["Storefront hero"]


def test_the_feeds_page_says_how_many_deprecated_tokens_the_setting_holds(
    client, settings, reviewer
):
    client.force_login(reviewer)
    assert 'id="legacy-feed-tokens"' not in client.get(FEEDS).content.decode()

    settings.FEED_TOKENS = ["a", "b"]

    html = client.get(FEEDS).content.decode()
    assert "holds 2 more tokens" in html and "deprecated" in html
    assert ">a<" not in html  # the tokens themselves are never shown


def test_merchandisers_see_the_page_but_cannot_make_or_revoke_tokens(client, merchandiser):
    token, _ = feed_token_create(name="Marketplace upload")
    client.force_login(merchandiser)

    html = client.get(FEEDS).content.decode()

    assert "Marketplace upload" in html and "/feeds/published.csv" in html
    assert revoke_url(token) not in html and ADD not in html
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"name": "Mine"}).status_code == 403
    assert client.get(revoke_url(token)).status_code == 403
    assert client.post(revoke_url(token)).status_code == 403
    client.post(FEEDS, {"action": "revoke_selected", "_selected_action": [token.pk]})
    assert FeedToken.objects.get(pk=token.pk).revoked_at is None
    assert not FeedToken.objects.filter(name="Mine").exists()


def test_the_feeds_page_needs_staff_and_the_view_permission(client, reviewer):
    token, _ = feed_token_create(name="Marketplace upload")
    assert client.get(FEEDS).status_code == 302  # to the login page
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(nobody)
    assert client.get(FEEDS).status_code == 403
    assert client.get(revoke_url(token)).status_code == 403
    outsider = User.objects.create_user("outsider", password="pw", is_staff=False)
    outsider.user_permissions.add(*reviewer.groups.get().permissions.all())
    client.force_login(outsider)
    assert client.get(FEEDS).status_code == 302  # the admin is for staff only


def test_a_superuser_can_make_and_revoke_tokens(admin_client):
    response = admin_client.post(ADD, {"name": "Ops"})
    token = FeedToken.objects.get(name="Ops")
    assert response.context["secret"].startswith(token.prefix)

    admin_client.post(revoke_url(token))

    assert FeedToken.objects.get(pk=token.pk).revoked_at is not None


def test_the_feeds_page_is_linked_from_the_presets_and_published_images(
    client, settings, reviewer, published
):
    settings.MILVUS_URI = "http://127.0.0.1:9"  # the product page's look-alikes: not needed
    settings.MILVUS_TIMEOUT = 1
    client.force_login(reviewer)
    preset = published.preset

    pages = [
        reverse("admin:app_list", args=["generation"]),
        reverse("admin:generation_channelpreset_changelist"),
        reverse("admin:generation_channelpreset_change", args=[preset.pk]),
        reverse("admin:catalog_product_change", args=[published.product_id]),
    ]

    for page in pages:
        assert FEEDS in client.get(page).content.decode(), page
    preset_page = client.get(pages[2]).content.decode()
    assert f"{FEEDS}#feed-preset-{preset.pk}" in preset_page
    assert f'id="feed-preset-{preset.pk}"' in client.get(FEEDS).content.decode()
