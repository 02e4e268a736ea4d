"""Signed webhooks: endpoints, events at the domain points, at-least-once delivery to a real
local receiver that verifies every signature with the standardwebhooks library."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import dramatiq
import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from catalog.models import Product
from generation.models import AssetStatus, ChannelPreset, GeneratedAsset, GenerationBatch
from generation.review import asset_approve, asset_publish
from generation.transitions import asset_transition
from hooks.delivery import delivery_attempt
from hooks.endpoints import EndpointRefused, endpoint_create, endpoint_disable
from hooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from hooks.periodic import requeue_lost_webhooks
from tests.factories import make_product
from tests.test_reliability import ROOT, _database_url
from tests.test_review import png_bytes
from tests.webhook_receiver import WebhookReceiver


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def endpoint_for(receiver: WebhookReceiver, *events: str, owner=None) -> WebhookEndpoint:
    endpoint, secret = endpoint_create(url=receiver.url, events=list(events), owner=owner)
    receiver.secret = secret
    return endpoint


def make_asset(*, status=AssetStatus.IN_REVIEW) -> GeneratedAsset:
    """An image of a product for a preset of its own (transactional tests lose the migrations'
    presets), in review by default."""
    product = Product.objects.filter(sku="HOOK1").first() or make_product("HOOK1", name="Dress")
    preset, _ = ChannelPreset.objects.get_or_create(
        name="Webhook hero", defaults={"aspect_ratio": "4:5", "size_tier": "1K"}
    )
    batch = GenerationBatch.objects.create(size_tier="1K")
    asset = GeneratedAsset.objects.create(
        batch=batch,
        product=product,
        preset=preset,
        version=GeneratedAsset.objects.filter(product=product, preset=preset).count() + 1,
        status=status,
        aspect_ratio=preset.aspect_ratio,
        size_tier="1K",
        width=96,
        height=128,
    )
    asset.image.save(f"HOOK1-v{asset.version}.png", ContentFile(png_bytes()))
    return asset


# --- endpoints ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_webhook_prints_the_secret_alone_on_the_last_line():
    User.objects.create_user("owner", email="owner@example.com")
    out = io.StringIO()
    call_command(
        "add_webhook",
        "https://shop.example.com/hooks",
        "--event",
        "asset.published",
        "--event",
        "product.created",
        "--owner",
        "owner",
        stdout=out,
    )
    secret = out.getvalue().strip().splitlines()[-1]
    endpoint = WebhookEndpoint.objects.get()
    assert secret.startswith("whsec_") and len(secret) >= 6 + 32
    assert endpoint.secret == secret
    assert endpoint.events == ["product.created", "asset.published"]
    assert endpoint.owner.username == "owner"


@pytest.mark.django_db
def test_private_and_non_http_urls_are_refused_unless_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    for url in ("http://127.0.0.1:8000/hooks", "http://localhost/hooks", "http://10.0.0.5/x"):
        with pytest.raises(EndpointRefused, match="private"):
            endpoint_create(url=url, events=["asset.published"])
    with pytest.raises(EndpointRefused, match="http or https"):
        endpoint_create(url="ftp://shop.example.com/hooks", events=["asset.published"])
    with pytest.raises(EndpointRefused, match="Unknown event type"):
        endpoint_create(url="https://shop.example.com/", events=["asset.deleted"])
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint_create(url="http://127.0.0.1:8000/hooks", events=["asset.published"])


@pytest.mark.django_db
def test_the_admin_shows_the_secret_once_on_the_answering_page(admin_client):
    response = admin_client.post(
        "/admin/hooks/webhookendpoint/add/",
        {"url": "https://shop.example.com/hooks", "events": ["asset.published"]},
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    page = admin_client.get(f"/admin/hooks/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and endpoint.secret not in page.content.decode()
    listing = admin_client.get("/admin/hooks/webhookendpoint/")
    assert endpoint.secret not in listing.content.decode()


@pytest.mark.django_db
def test_nothing_is_recorded_for_a_rolled_back_change_or_without_subscribers(broker):
    make_product("LONELY")  # no endpoint: no event rows
    assert not WebhookEvent.objects.exists()
    endpoint_create(url="http://127.0.0.1:9/hooks", events=["product.created"])
    with pytest.raises(RuntimeError), transaction.atomic():
        make_product("GONE")
        raise RuntimeError("rolled back")
    assert not WebhookEvent.objects.exists()
    assert not broker.queues["webhooks"].qsize()


# --- events delivered to a real receiver -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_product_created_and_updated_are_delivered_signed(worker, broker):
    with WebhookReceiver() as receiver:
        endpoint_for(receiver, "product.created", "product.updated")
        product = make_product("SIGNED1", name="Linen dress", price="49.90")
        product.name = "Linen dress, long"
        product.save()
        broker.join("webhooks")
        received = receiver.wait_for(2)
    assert all(r.verified for r in received), [r.error for r in received]
    by_type = {r.event["type"]: r.event["data"] for r in received}
    assert by_type["product.created"]["sku"] == "SIGNED1"
    assert by_type["product.created"]["category"] == "dress"
    assert by_type["product.created"]["id"] == product.pk
    assert by_type["product.updated"]["name"] == "Linen dress, long"
    ids = set(WebhookDelivery.objects.values_list("message_id", flat=True))
    assert {r.webhook_id for r in received} == ids
    assert all(i.startswith("msg_") for i in ids)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


@pytest.mark.django_db(transaction=True)
def test_review_and_publishing_events_carry_what_a_storefront_needs(worker, broker, settings):
    settings.SITE_URL = "https://studio.example.com"
    reviewer = User.objects.create_superuser("boss", "boss@example.com", "pw")
    asset = make_asset(status=AssetStatus.CHECKING)
    with WebhookReceiver() as receiver:
        endpoint_for(
            receiver, "asset.in_review", "asset.approved", "asset.published", "batch.finished"
        )
        asset_transition(asset, AssetStatus.IN_REVIEW)
        asset_approve(asset=asset, user=reviewer)
        asset_publish(asset=asset, user=reviewer)
        broker.join("webhooks")
        received = receiver.wait_for(4)
    assert all(r.verified for r in received), [r.error for r in received]
    by_type = {r.event["type"]: r.event["data"] for r in received}
    assert set(by_type) == {
        "asset.in_review",
        "batch.finished",
        "asset.approved",
        "asset.published",
    }
    published = by_type["asset.published"]
    assert published["id"] == asset.pk
    assert published["sku"] == "HOOK1"
    assert published["preset"] == "Webhook hero"
    assert (published["width"], published["height"], published["offline"]) == (96, 128, False)
    assert published["url"].startswith("https://studio.example.com/")
    assert published["url"].endswith(".png") or published["url"].endswith(".jpg")
    assert by_type["asset.approved"]["status"] == "approved"
    assert by_type["batch.finished"]["counts"] == {"in_review": 1}


@pytest.mark.django_db(transaction=True)
def test_a_receiver_down_for_a_while_gets_the_event_later_with_the_same_id(
    worker, broker, settings
):
    settings.WEBHOOK_RETRY_DELAYS = [1, 1, 1, 1, 1]
    receiver = WebhookReceiver()  # not listening yet: connections are refused
    endpoint_for(receiver, "product.created")
    make_product("LATER1")
    delivery = WebhookDelivery.objects.get()
    wait_until(lambda: WebhookDelivery.objects.get().attempts >= 2)
    with receiver:
        received = receiver.wait_for(1)
        wait_until(lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED)
    delivery.refresh_from_db()
    assert received[0].verified and received[0].webhook_id == delivery.message_id
    log = list(delivery.attempt_log.order_by("started_at"))
    assert len(log) >= 3 and log[-1].status_code == 204
    assert all(a.status_code is None and "ConnectionError" in a.error for a in log[:-1])


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_is_redelivered_by_the_periodic_job(broker, settings):
    settings.WEBHOOK_CLAIM_LEASE_SECONDS = 2
    with WebhookReceiver(hold_first=True) as receiver:
        endpoint_for(receiver, "product.created")
        make_product("KILLED1")
        delivery = WebhookDelivery.objects.get()
        broker.flush_all()  # the doomed worker below took the message: the broker holds none
        doomed = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from hooks.delivery import delivery_attempt; "
                f"delivery_attempt(delivery_id={delivery.pk}, worker='doomed')",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": _database_url(),
                "WEBHOOK_CLAIM_LEASE_SECONDS": "2",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # It claimed the row and POSTed; killed while it waits for the answer.
        assert receiver.holding.wait(60), doomed.stderr.read().decode()[-2000:]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        receiver.release.set()
        claimed = WebhookDelivery.objects.get()
        assert (claimed.status, claimed.claimed_by, claimed.attempts) == ("sending", "doomed", 0)
        requeue_lost_webhooks()  # the lease still holds: nothing to send yet
        assert not broker.queues["webhooks"].qsize()
        wait_until(lambda: timezone.now() > claimed.claimed_until)
        requeue_lost_webhooks()  # the scheduler's periodic job
        assert broker.queues["webhooks"].qsize() == 1
        worker = dramatiq.Worker(broker, worker_timeout=100)
        worker.start()
        try:
            broker.join("webhooks")
        finally:
            worker.stop()
        received = receiver.wait_for(2)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [r.webhook_id for r in received] == [delivery.message_id] * 2
    assert all(r.verified for r in received)
    # The killed worker recorded nothing; the one attempt on record is the redelivery.
    assert [a.status_code for a in delivery.attempt_log.all()] == [204]


@pytest.mark.django_db(transaction=True)
def test_repeated_failure_disables_the_endpoint_and_mails_its_owner(worker, broker, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOK_RETRY_DELAYS = [0]
    settings.WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES = 2
    owner = User.objects.create_user("shopdev", email="shopdev@example.com")
    with WebhookReceiver() as receiver:
        receiver.statuses = [500] * 10
        endpoint = endpoint_for(receiver, "product.created", owner=owner)
        make_product("FAIL1")
        make_product("FAIL2")
        wait_until(lambda: not WebhookEndpoint.objects.get().is_active)
        wait_until(lambda: len(mail.outbox) == 1)
        make_product("FAIL3")  # nobody listens any more
    endpoint.refresh_from_db()
    assert "2 deliveries in a row failed" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert WebhookDelivery.objects.count() == 2
    assert mail.outbox[0].to == ["shopdev@example.com"]
    assert receiver.url in mail.outbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_a_disabled_endpoint_keeps_its_waiting_deliveries_until_enabled(worker, broker, client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    with WebhookReceiver() as receiver:
        endpoint = endpoint_for(receiver, "product.created")
        make_product("WAIT1")
        receiver.wait_for(1)
        # Disabled after the event: its delivery waits (made due again by hand here).
        endpoint_disable(endpoint=endpoint, reason="maintenance")
        WebhookDelivery.objects.update(status="pending", next_attempt_at=timezone.now())
        waiting = WebhookDelivery.objects.get()
        assert delivery_attempt(delivery_id=waiting.pk, worker="w") is None  # not sent meanwhile
        response = client.post(
            "/admin/hooks/webhookendpoint/",
            {"action": "enable_endpoints", "_selected_action": [endpoint.pk]},
            follow=True,
        )
        assert "1 waiting delivery queued" in response.content.decode()
        received = receiver.wait_for(2)
    assert received[0].webhook_id == received[1].webhook_id


@pytest.mark.django_db(transaction=True)
def test_send_again_from_the_admin_keeps_the_webhook_id(worker, broker, client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    with WebhookReceiver() as receiver:
        endpoint_for(receiver, "product.created")
        make_product("AGAIN1")
        receiver.wait_for(1)
        delivery = WebhookDelivery.objects.get()
        wait_until(lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED)
        response = client.post(
            "/admin/hooks/webhookdelivery/",
            {"action": "send_again", "_selected_action": [delivery.pk]},
        )
        assert response.status_code == 302
        received = receiver.wait_for(2)
        page = client.post(f"/admin/hooks/webhookdelivery/{delivery.pk}/change/", {})
        wait_until(lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED)
        again = client.post(
            f"/admin/hooks/webhookdelivery/{delivery.pk}/change/", {"_send_again": "1"}
        )
        assert again.status_code == 302
        received = receiver.wait_for(3)
    assert page.status_code in (200, 302)
    assert [r.webhook_id for r in received] == [delivery.message_id] * 3
    log = client.get(f"/admin/hooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "204" in log


@pytest.mark.django_db(transaction=True)
def test_redirects_are_not_followed(worker, broker, settings):
    settings.WEBHOOK_RETRY_DELAYS = [60]
    with WebhookReceiver() as receiver:
        receiver.statuses = [302]
        endpoint_for(receiver, "product.created")
        make_product("MOVED1")
        wait_until(lambda: WebhookDelivery.objects.get().attempts == 1)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_response
    assert len(receiver.received) == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=30)


# --- events recorded at the other domain points -------------------------------------------------


def test_an_import_tells_of_each_product_and_of_its_end(client, db, broker, settings):
    from tests.test_admin import post_import, run_import_jobs, staff_user
    from tests.test_import_jobs import IMPORT_PERMS, big_upload

    client.force_login(staff_user("importer", *IMPORT_PERMS))
    endpoint_create(url="http://127.0.0.1:9/h", events=["product.created", "import.finished"])
    page = post_import(client, *big_upload(4))
    client.post(page.wsgi_request.path, {"action": "confirm"})
    run_import_jobs()

    created = WebhookEvent.objects.filter(event_type="product.created")
    assert sorted(e.payload["sku"] for e in created) == [f"SKU-{n:05d}" for n in range(4)]
    finished = WebhookEvent.objects.get(event_type="import.finished").payload
    assert (finished["state"], finished["created"], finished["failed"]) == ("done", 4, 0)
    assert WebhookDelivery.objects.count() == 5


@pytest.mark.django_db
def test_rejecting_and_unpublishing_are_events_too(broker, settings):
    from generation.review import asset_reject, asset_unpublish

    boss = User.objects.create_superuser("boss", "boss@example.com", "pw")
    endpoint_create(url="http://127.0.0.1:9/h", events=["asset.rejected", "asset.unpublished"])
    rejected = make_asset()
    asset_reject(asset=rejected, user=boss, reason="The sleeve is wrong")
    published = make_asset(status=AssetStatus.APPROVED)
    asset_publish(asset=published, user=boss)
    asset_unpublish(asset=published, user=boss)

    events = {e.event_type: e.payload for e in WebhookEvent.objects.all()}
    assert events["asset.rejected"]["rejection_reason"] == "The sleeve is wrong"
    assert events["asset.unpublished"]["id"] == published.pk
    assert events["asset.unpublished"]["url"] == ""
