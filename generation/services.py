"""Promo requests: a merchandiser's request becomes a batch of queued assets, new versions are
made from earlier ones (a reviewer's regenerate, or a failed quality check's), and assets whose
message was lost are sent again.

`batch_create` turns a request into one asset per product × preset and queues them after
commit; the pipeline that makes each image is generation.pipeline, run by the actor
generation.tasks.generate_asset. The pipeline queues new versions itself, so this module finds
that actor through the broker rather than importing it (which would close an import cycle).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import dramatiq
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from catalog.models import Product
from core.queue import enqueue_after_commit, pending_message_ids
from generation.models import (
    AssetEvent,
    AssetReference,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRequest:
    products: list[Product]
    presets: list[ChannelPreset]
    size_tier: str
    reference_count: int
    variants: int = 1  # candidates per product and preset, to choose from in review


def batch_create(
    *, user, request: BatchRequest, estimated_cost: Decimal, request_key: str | None = None
) -> GenerationBatch:
    """One batch, one queued asset per product × preset, sent to the workers after commit.

    With a `request_key` (the request page's), a request made again (a double submit, a
    reload) returns the batch it made the first time.
    """
    without_photo = [p.sku for p in request.products if not p.has_photo]
    if without_photo:
        raise ValueError(f"These products have no photo to start from: {', '.join(without_photo)}")
    priced = [preset.name for preset in request.presets if PRICE in preset.overlay_text]
    without_price = [p.sku for p in request.products if p.price is None]
    if priced and without_price:
        raise ValueError(
            f"The text of {', '.join(priced)} shows the price, and these products "
            f"have none: {', '.join(without_price)}"
        )
    if request_key and (done := GenerationBatch.objects.filter(request_key=request_key).first()):
        return done
    try:
        with transaction.atomic():
            batch = GenerationBatch.objects.create(
                requested_by=user,
                size_tier=request.size_tier,
                request_key=request_key or None,
                reference_count=request.reference_count,
                variants=request.variants,
                estimated_cost=estimated_cost,
            )
            batch.presets.set(request.presets)
            for product in request.products:
                for preset in request.presets:
                    for asset in asset_create_version(
                        product=product,
                        preset=preset,
                        variants=request.variants,
                        batch=batch,
                        size_tier=request.size_tier,
                        reference_count=request.reference_count,
                    ):
                        asset_queue(asset=asset, user=user, note=f"requested in batch {batch.pk}")
    except IntegrityError:
        if request_key and (
            done := GenerationBatch.objects.filter(request_key=request_key).first()
        ):
            return done  # the same request, submitted at the same moment, won the race
        raise
    return batch


def asset_create_version(
    *, product: Product, preset: ChannelPreset, variants: int = 1, **fields
) -> list[GeneratedAsset]:
    """The next version of a product's image for a preset, as `variants` candidates. Call
    inside a transaction.

    The product's row is locked first, so simultaneous requests for the same product and
    preset take their versions one after another instead of colliding.
    """
    Product.objects.select_for_update().filter(pk=product.pk).first()
    latest = (
        GeneratedAsset.objects.filter(product=product, preset=preset).aggregate(v=Max("version"))[
            "v"
        ]
        or 0
    )
    fields.setdefault("aspect_ratio", preset.aspect_ratio)
    fields.setdefault("staged", preset.staged)
    fields.setdefault("overlay_text", overlay_text(preset, product))
    fields.setdefault("language", preset.language if preset.overlay_text else "")
    return [
        GeneratedAsset.objects.create(
            product=product, preset=preset, version=latest + 1, variant=variant, **fields
        )
        for variant in range(1, variants + 1)
    ]


PRICE = "{price}"


def overlay_text(preset: ChannelPreset, product: Product) -> str:
    """The exact text a preset asks the image of this product to show ({price} filled in)."""
    if PRICE not in preset.overlay_text:
        return preset.overlay_text
    return preset.overlay_text.replace(
        PRICE, "" if product.price is None else f"{product.price:.2f}"
    )


def asset_next_version(
    *, asset: GeneratedAsset, feedback: str, user=None, note: str, **fields
) -> GeneratedAsset:
    """A new version of an asset that takes its feedback into account, queued. Call inside a
    transaction.

    The retrieved references and the style prompt carry over, so only the image (and its
    quality check) is paid again; the preset's format, stages and text are the asset's own.
    """
    [new] = asset_create_version(
        product=asset.product,
        preset=asset.preset,
        batch=asset.batch,
        previous_version=asset,
        aspect_ratio=asset.aspect_ratio,
        size_tier=asset.size_tier,
        reference_count=asset.reference_count,
        staged=asset.staged,
        overlay_text=asset.overlay_text,
        language=asset.language,
        feedback=feedback,
        retrieved_at=asset.retrieved_at,
        retrieval_note=asset.retrieval_note,
        style_prompt=asset.style_prompt,
        analyst_model=asset.analyst_model,
        offline=asset.offline,
        **fields,
    )
    AssetReference.objects.bulk_create(
        [
            AssetReference(
                asset=new,
                product_id=ref.product_id,
                rank=ref.rank,
                score=ref.score,
                dense_rank=ref.dense_rank,
                sparse_rank=ref.sparse_rank,
            )
            for ref in asset.references.all()
        ]
    )
    asset_queue(asset=new, user=user, note=note)
    return new


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
            message_id="",
            last_error=f"Could not reach the task queue ({exc}); it is sent "
            "again automatically once the queue is back.",
        )

    enqueue_after_commit(_generate_actor(), pk, on_sent=sent, on_failed=failed)


def _generate_actor() -> dramatiq.Actor:
    """generation.tasks.generate_asset, as the broker knows it (see the module docstring)."""
    return dramatiq.get_broker().get_actor("generate_asset")


def assets_requeue_lost() -> int:
    """Send again every unfinished asset whose message is gone (a failed send, a broker that
    lost it, a message dropped after its retries): no live claim, no pending or delayed
    message, and no change for GENERATION_REQUEUE_AFTER_SECONDS. Returns how many."""
    now = timezone.now()
    quiet = now - timedelta(seconds=settings.GENERATION_REQUEUE_AFTER_SECONDS)
    lease_over = now - timedelta(seconds=settings.GENERATION_CLAIM_LEASE_SECONDS)
    candidates = (
        GeneratedAsset.objects.filter(status__in=AssetStatus.running(), updated_at__lt=quiet)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=lease_over))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lt=quiet))
    )
    pending = pending_message_ids(_generate_actor().queue_name)
    sent = 0
    for asset in candidates.only("pk", "status", "message_id"):
        if pending is not None and asset.message_id and asset.message_id in pending:
            continue  # still on its way (or with a dead worker, whom the broker replaces)
        with transaction.atomic():
            AssetEvent.objects.create(
                asset=asset,
                from_status=asset.status,
                to_status=asset.status,
                worker="sweeper",
                note="its message was lost: sent again",
            )
            GeneratedAsset.objects.filter(pk=asset.pk).update(updated_at=now)
            _send(asset)
        sent += 1
    if sent:
        logger.info("sent %s lost asset message(s) again", sent)
    return sent
