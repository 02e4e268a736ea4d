"""Promo requests: a merchandiser's request becomes a batch of queued assets, and assets whose
message was lost are sent again.

`batch_create` turns a request into one asset per product × preset and queues them after
commit; the pipeline that makes each image is generation.pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from catalog.models import Product
from core.queue import enqueue_after_commit, pending_message_ids
from generation.models import AssetEvent, AssetStatus, ChannelPreset, GeneratedAsset, GenerationBatch
from generation.tasks import generate_asset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRequest:
    products: list[Product]
    presets: list[ChannelPreset]
    size_tier: str
    reference_count: int
    variants: int = 1  # candidates per product and preset, to choose from in review


def batch_create(*, user, request: BatchRequest, estimated_cost: Decimal,
                 request_key: str | None = None) -> GenerationBatch:
    """One batch, one queued asset per product × preset, sent to the workers after commit.

    With a `request_key` (the request page's), a request made again (a double submit, a
    reload) returns the batch it made the first time.
    """
    without_photo = [p.sku for p in request.products if not p.has_photo]
    if without_photo:
        raise ValueError(f"These products have no photo to start from: {', '.join(without_photo)}")
    if request_key and (done := GenerationBatch.objects.filter(request_key=request_key).first()):
        return done
    try:
        with transaction.atomic():
            batch = GenerationBatch.objects.create(
                requested_by=user, size_tier=request.size_tier, request_key=request_key or None,
                reference_count=request.reference_count, variants=request.variants,
                estimated_cost=estimated_cost,
            )
            batch.presets.set(request.presets)
            for product in request.products:
                for preset in request.presets:
                    for asset in asset_create_version(
                            product=product, preset=preset, variants=request.variants, batch=batch,
                            size_tier=request.size_tier, reference_count=request.reference_count):
                        asset_queue(asset=asset, user=user, note=f"requested in batch {batch.pk}")
    except IntegrityError:
        if request_key and (done := GenerationBatch.objects.filter(request_key=request_key).first()):
            return done  # the same request, submitted at the same moment, won the race
        raise
    return batch


def asset_create_version(*, product: Product, preset: ChannelPreset, variants: int = 1,
                         **fields) -> list[GeneratedAsset]:
    """The next version of a product's image for a preset, as `variants` candidates. Call
    inside a transaction.

    The product's row is locked first, so simultaneous requests for the same product and
    preset take their versions one after another instead of colliding.
    """
    Product.objects.select_for_update().filter(pk=product.pk).first()
    latest = (GeneratedAsset.objects.filter(product=product, preset=preset)
              .aggregate(v=Max("version"))["v"] or 0)
    fields.setdefault("aspect_ratio", preset.aspect_ratio)
    return [GeneratedAsset.objects.create(product=product, preset=preset, version=latest + 1,
                                          variant=variant, **fields)
            for variant in range(1, variants + 1)]


def asset_queue(*, asset: GeneratedAsset, user=None, note: str = "") -> None:
    """Log the asset as queued and send it to a worker once the transaction commits."""
    AssetEvent.objects.create(asset=asset, to_status=AssetStatus.QUEUED, user=user, note=note)
    _send(asset)


def _send(asset: GeneratedAsset) -> None:
    """Send the asset's message after commit; record its id, or why it could not be sent."""
    pk = asset.pk

    def sent(message):
        GeneratedAsset.objects.filter(pk=pk).update(message_id=message.message_id)

    def failed(exc):
        GeneratedAsset.objects.filter(pk=pk).update(
            message_id="", last_error=f"Could not reach the task queue ({exc}); it is sent "
                                      "again automatically once the queue is back.")

    enqueue_after_commit(generate_asset, pk, on_sent=sent, on_failed=failed)


def assets_requeue_lost() -> int:
    """Send again every unfinished asset whose message is gone (a failed send, a broker that
    lost it, a message dropped after its retries): no live claim, no pending or delayed
    message, and no change for GENERATION_REQUEUE_AFTER_SECONDS. Returns how many."""
    now = timezone.now()
    quiet = now - timedelta(seconds=settings.GENERATION_REQUEUE_AFTER_SECONDS)
    lease_over = now - timedelta(seconds=settings.GENERATION_CLAIM_LEASE_SECONDS)
    candidates = (GeneratedAsset.objects.filter(status__in=AssetStatus.running(), updated_at__lt=quiet)
                  .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=lease_over))
                  .filter(Q(retry_at__isnull=True) | Q(retry_at__lt=quiet)))
    pending = pending_message_ids(generate_asset.queue_name)
    sent = 0
    for asset in candidates.only("pk", "status", "message_id"):
        if pending is not None and asset.message_id and asset.message_id in pending:
            continue  # still on its way (or with a dead worker, whom the broker replaces)
        with transaction.atomic():
            AssetEvent.objects.create(asset=asset, from_status=asset.status, to_status=asset.status,
                                      worker="sweeper", note="its message was lost: sent again")
            GeneratedAsset.objects.filter(pk=asset.pk).update(updated_at=now)
            _send(asset)
        sent += 1
    if sent:
        logger.info("sent %s lost asset message(s) again", sent)
    return sent
