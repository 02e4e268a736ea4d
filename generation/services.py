"""Promo requests: a merchandiser's request becomes a batch of queued assets, new versions are
made from earlier ones (a reviewer's regenerate, or a failed quality check's), and assets whose
message was lost are sent again.

`batch_create` turns a request into one asset per product × preset and queues them after
commit; the pipeline that makes each image is generation.pipeline, run by the actors of
generation.tasks. The pipeline queues new versions itself, so this module finds those actors
through the broker rather than importing them (which would close an import cycle).

Two lanes, so that a season drop never makes a reviewer wait:

- Interactive (a reviewer's regeneration, a request of at most
  GENERATION_INTERACTIVE_MAX_ASSETS images): sent at once to a queue of its own, whose actor
  the workers take before any bulk message, and whose calls take the next free slot of a model
  before any bulk call (core.ratelimit).
- Bulk (every larger batch): the assets wait in the database, the source of truth, and
  `assets_dispatch` hands them to the workers, at most GENERATION_BULK_MESSAGES at a time in
  all, always to the batch that has the fewest in the workers' hands (round-robin by batch).
  A colleague's small batch started during a large drop gets its share from the next message
  that finishes; the bulk queue stays a few messages deep, so a worker's threads are never all
  taken by it. Dispatch runs after a batch is created, after every bulk message, and from the
  periodic job, so nothing waits on a dispatch that a crash prevented.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import dramatiq
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
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
    Lane,
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
    images = len(request.products) * len(request.presets) * request.variants
    lane = Lane.INTERACTIVE if images <= settings.GENERATION_INTERACTIVE_MAX_ASSETS else Lane.BULK
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
                        lane=lane,
                    ):
                        asset_queue(asset=asset, user=user, note=f"requested in batch {batch.pk}")
            if lane == Lane.BULK:
                transaction.on_commit(assets_dispatch)
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
    *,
    asset: GeneratedAsset,
    feedback: str,
    user=None,
    note: str,
    lane: str = Lane.INTERACTIVE,
    **fields,
) -> GeneratedAsset:
    """A new version of an asset that takes its feedback into account, queued. Call inside a
    transaction. Interactive unless said otherwise: a person is waiting for it.

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
        lane=lane,
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
    """Log the asset as queued; an interactive one is sent to a worker once the transaction
    commits. A bulk one waits for its batch's turn: whoever queues it dispatches after commit
    (the batch, the message that made it), else the periodic job does."""
    AssetEvent.objects.create(asset=asset, to_status=AssetStatus.QUEUED, user=user, note=note)
    if asset.lane != Lane.BULK:
        asset_send(asset)


def asset_send_later(*, asset_id: int, delay: float) -> None:
    """Send the asset's message again in `delay` seconds: a fresh message, as waiting for the
    provider's rate limit is not a failure that Dramatiq's retries should count."""
    asset = GeneratedAsset.objects.only("pk", "lane").get(pk=asset_id)
    asset_send(asset, delay=delay)


def asset_send(asset: GeneratedAsset, *, delay: float | None = None) -> None:
    """Send the asset's message in its lane after commit; record its id, or why it could not
    be sent."""
    pk = asset.pk

    def sent(message):
        GeneratedAsset.objects.filter(pk=pk).update(message_id=message.message_id)

    def failed(exc):
        GeneratedAsset.objects.filter(pk=pk).update(
            message_id="",
            last_error=f"Could not reach the task queue ({exc}); it is sent "
            "again automatically once the queue is back.",
        )

    enqueue_after_commit(
        _generate_actor(asset.lane), pk, on_sent=sent, on_failed=failed, delay=delay
    )


ACTORS = {Lane.INTERACTIVE: "generate_asset_now", Lane.BULK: "generate_asset"}
DISPATCHING = "dispatching"  # message_id of a bulk asset taken by a dispatch, until it is sent
DISPATCH_ROUND = 8  # messages sent per round of a dispatch, before it counts again


def _generate_actor(lane: str) -> dramatiq.Actor:
    """The lane's actor of generation.tasks, as the broker knows it (see the module
    docstring)."""
    return dramatiq.get_broker().get_actor(ACTORS[Lane(lane)])


def assets_dispatch() -> int:
    """Hand waiting bulk assets to the workers until GENERATION_BULK_MESSAGES are in their
    hands, one at a time to the batch that has the fewest there (the oldest batch first on a
    tie). Returns how many were sent.

    In the workers' hands: sent, unfinished, and not waiting out a delayed retry (which would
    otherwise hold a place while it sleeps). Each asset is taken by a conditional update, so
    dispatches running at once never send one twice; they may pass the limit by a round.
    """
    sent = 0
    running = GeneratedAsset.objects.filter(lane=Lane.BULK, status__in=AssetStatus.running())
    # Enough rounds to fill every place; bounded, as a send that fails (the broker is away)
    # leaves its asset waiting for the next dispatch instead of being taken again here.
    for _ in range(settings.GENERATION_BULK_MESSAGES // DISPATCH_ROUND + 1):
        now = timezone.now()
        in_hand = dict(
            running.exclude(message_id="")
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .values_list("batch_id")
            .annotate(n=Count("pk"))
        )
        free = settings.GENERATION_BULK_MESSAGES - sum(in_hand.values())
        waiting = dict(
            running.filter(message_id="").values_list("batch_id").annotate(n=Count("pk"))
        )
        if free <= 0 or not waiting:
            return sent
        picks: dict[int, int] = {}
        for _ in range(min(free, DISPATCH_ROUND)):
            open_batches = [b for b, n in waiting.items() if picks.get(b, 0) < n]
            if not open_batches:
                break
            batch = min(open_batches, key=lambda b: (in_hand.get(b, 0) + picks.get(b, 0), b))
            picks[batch] = picks.get(batch, 0) + 1
        for batch_id, count in picks.items():
            for asset in running.filter(batch_id=batch_id, message_id="").order_by("pk")[:count]:
                taken = GeneratedAsset.objects.filter(pk=asset.pk, message_id="").update(
                    message_id=DISPATCHING, updated_at=now
                )
                if taken:
                    asset_send(asset)
                    sent += 1
    return sent


def assets_requeue_lost() -> int:
    """Send again every unfinished asset whose message is gone (a failed send, a broker that
    lost it, a message dropped after its retries): no live claim, no pending or delayed
    message, and no change for GENERATION_REQUEUE_AFTER_SECONDS. Returns how many.

    Bulk assets that were never dispatched are the dispatcher's (`assets_dispatch`, which the
    same periodic job runs); a bulk asset dispatched and then lost is sent again here."""
    now = timezone.now()
    quiet = now - timedelta(seconds=settings.GENERATION_REQUEUE_AFTER_SECONDS)
    lease_over = now - timedelta(seconds=settings.GENERATION_CLAIM_LEASE_SECONDS)
    candidates = (
        GeneratedAsset.objects.filter(status__in=AssetStatus.running(), updated_at__lt=quiet)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=lease_over))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lt=quiet))
        .exclude(lane=Lane.BULK, message_id="")
    )
    pending = set()
    for lane in Lane:
        queued = pending_message_ids(_generate_actor(lane).queue_name)
        pending = None if pending is None or queued is None else pending | queued
    sent = 0
    for asset in candidates.only("pk", "status", "message_id", "lane"):
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
            asset_send(asset)
        sent += 1
    if sent:
        logger.info("sent %s lost asset message(s) again", sent)
    return sent
