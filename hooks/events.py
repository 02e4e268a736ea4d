"""What happened, as webhook events: the payloads, and the calls made at the domain points
(catalog writes and imports, asset transitions).

An event and its deliveries are written in the transaction of the change itself, so a rolled
back change tells nobody and a committed one is never lost; the delivery messages are sent
once it commits (core.queue.enqueue_after_commit). Nothing is written when no active endpoint
subscribes to the event type.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Product, changes_index
from hooks.delivery import delivery_nudge
from hooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent


def message_id_new() -> str:
    """A delivery's message id (the webhook-id header), kept on every attempt of it."""
    return f"msg_{uuid.uuid4().hex}"


def subscribers(event_type: str) -> list[WebhookEndpoint]:
    # JSON containment is not portable (SQLite): the few endpoints are filtered here.
    return [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(is_active=True).only("pk", "events")
        if event_type in endpoint.events
    ]


def webhooks_emit(*, event_type: str, payloads: list[dict]) -> list[WebhookEvent]:
    """Record one event per payload and a delivery of each to every endpoint that subscribes,
    and queue them after commit. Returns the events (none when nobody listens)."""
    endpoints = subscribers(event_type)
    if not endpoints or not payloads:
        return []
    with transaction.atomic():
        events = WebhookEvent.objects.bulk_create(
            [WebhookEvent(event_type=event_type, payload=payload) for payload in payloads]
        )
        deliveries = _deliveries_create(events, endpoints)
    _queue(deliveries)
    return events


def webhook_emit_once(*, event_type: str, payload: dict, key: str) -> WebhookEvent | None:
    """Like webhooks_emit for one payload, but only the first time for this key (None after)."""
    endpoints = subscribers(event_type)
    if not endpoints or WebhookEvent.objects.filter(key=key).exists():
        return None
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin leaves the caller intact
            event = WebhookEvent.objects.create(event_type=event_type, payload=payload, key=key)
            deliveries = _deliveries_create([event], endpoints)
    except IntegrityError:
        return None
    _queue(deliveries)
    return event


def _deliveries_create(
    events: list[WebhookEvent], endpoints: list[WebhookEndpoint]
) -> list[WebhookDelivery]:
    now = timezone.now()
    return WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event=event, endpoint=endpoint, message_id=message_id_new(), next_attempt_at=now
            )
            for event in events
            for endpoint in endpoints
        ]
    )


def _queue(deliveries: Iterable[WebhookDelivery]) -> None:
    for delivery in deliveries:
        delivery_nudge(delivery.pk)


# --- payloads ---------------------------------------------------------------------------------


def product_payload(product: Product) -> dict:
    return {
        "id": product.pk,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "colour": product.color,
        "style": product.style,
        "season": product.season,
        "description": product.description,
        "price": None if product.price is None else str(product.price),
        "sales_count": product.sales_count,
        "lifecycle": product.lifecycle,
        "image_width": product.image_width,
        "image_height": product.image_height,
        "updated_at": product.updated_at,
    }


def asset_payload(asset) -> dict:
    """An image with what a storefront needs to use it: for a published one its public URL."""
    from generation.views import published_url

    url = ""
    if asset.published_image:
        url = published_url(asset)
        if url.startswith("/"):
            url = settings.SITE_URL + url
    return {
        "id": asset.pk,
        "status": asset.status,
        "product_id": asset.product_id,
        "sku": asset.product.sku,
        "product_name": asset.product.name,
        "preset_id": asset.preset_id,
        "preset": asset.preset.name,
        "batch_id": asset.batch_id,
        "version": asset.version,
        "width": asset.width,
        "height": asset.height,
        "offline": asset.offline,
        "qa_status": asset.qa_status,
        "rejection_reason": asset.rejection_reason,
        "url": url,
        "published_at": asset.published_at,
        "updated_at": asset.updated_at,
    }


def batch_payload(batch) -> dict:
    progress = batch.progress()
    return {
        "id": batch.pk,
        "requested_by": batch.requested_by.get_username() if batch.requested_by else None,
        "size_tier": batch.size_tier,
        "variants": batch.variants,
        "counts": {status: n for status, n in progress.by_status.items() if n},
        "cost": str(progress.cost),
        "estimated_cost": str(batch.estimated_cost),
        "stopped_at": batch.stopped_at,
        "note": batch.note,
        "created_at": batch.created_at,
    }


def import_payload(job) -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "kind": job.kind,
        "file": job.csv_name,
        "requested_by": job.requested_by.get_username() if job.requested_by else None,
        "rows": job.total_rows,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "failed": job.failed,
        "note": job.note,
        "finished_at": job.finished_at,
    }


# --- the domain points ------------------------------------------------------------------------


def product_saved(sender, instance: Product, created: bool, update_fields=None, **kwargs):
    """A product saved one at a time (the admin, a service): created or updated. Saves of the
    index's bookkeeping alone are no news to a storefront."""
    if created:
        webhooks_emit(event_type=EventType.PRODUCT_CREATED, payloads=[product_payload(instance)])
    elif changes_index(update_fields):
        webhooks_emit(event_type=EventType.PRODUCT_UPDATED, payloads=[product_payload(instance)])


def products_written(sender, *, created: list[Product], updated: list[Product], **kwargs):
    """Products written in bulk by an import (catalog.events.products_written)."""
    for event_type, products in (
        (EventType.PRODUCT_CREATED, created),
        (EventType.PRODUCT_UPDATED, updated),
    ):
        if products and subscribers(event_type):
            fresh = Product.objects.filter(sku__in=[p.sku for p in products]).order_by("pk")
            webhooks_emit(
                event_type=event_type, payloads=[product_payload(p) for p in fresh.iterator()]
            )


def import_finished(sender, *, job, **kwargs):
    """An import job ended: done, failed, refused or cancelled (its `state` says which)."""
    webhooks_emit(event_type=EventType.IMPORT_FINISHED, payloads=[import_payload(job)])


ASSET_EVENTS = {
    # (from, to) → event; None for any other `from`
    (None, "in_review"): EventType.ASSET_IN_REVIEW,
    ("in_review", "approved"): EventType.ASSET_APPROVED,
    (None, "rejected"): EventType.ASSET_REJECTED,
    (None, "published"): EventType.ASSET_PUBLISHED,
    ("published", "approved"): EventType.ASSET_UNPUBLISHED,
}


def asset_moved(sender, *, asset, from_status: str, to_status: str, **kwargs):
    """An asset changed status (generation.events.asset_moved, in its transaction):
    tell the review and publishing steps, and the batch's end when this was its last image
    still being made."""
    from generation.models import AssetStatus, GeneratedAsset, GenerationBatch

    event_type = ASSET_EVENTS.get((from_status, to_status)) or ASSET_EVENTS.get((None, to_status))
    if event_type and subscribers(event_type):
        asset = GeneratedAsset.objects.select_related("product", "preset").get(pk=asset.pk)
        webhooks_emit(event_type=event_type, payloads=[asset_payload(asset)])
    running = AssetStatus.running()
    if (
        from_status in running
        and to_status not in running
        and subscribers(EventType.BATCH_FINISHED)
        and not GeneratedAsset.objects.filter(batch_id=asset.batch_id, status__in=running).exists()
    ):
        batch = GenerationBatch.objects.select_related("requested_by").get(pk=asset.batch_id)
        # Regenerating adds images to a batch, which then finishes again: once per size.
        size = batch.assets.count()
        webhook_emit_once(
            event_type=EventType.BATCH_FINISHED,
            payload=batch_payload(batch),
            key=f"batch.finished:{batch.pk}:{size}",
        )
