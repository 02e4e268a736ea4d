"""Promo requests: a merchandiser's request becomes a batch of queued assets.

`batch_create` turns a request into one asset per product × preset and queues them after
commit; the pipeline that makes each image is generation.pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from catalog.models import Product
from core.queue import enqueue_after_commit
from generation.models import AssetEvent, AssetStatus, ChannelPreset, GeneratedAsset, GenerationBatch
from generation.tasks import generate_asset


@dataclass(frozen=True)
class BatchRequest:
    products: list[Product]
    presets: list[ChannelPreset]
    size_tier: str
    reference_count: int


def batch_create(*, user, request: BatchRequest, estimated_cost: Decimal) -> GenerationBatch:
    """One batch, one queued asset per product × preset, sent to the workers after commit."""
    without_photo = [p.sku for p in request.products if not p.has_photo]
    if without_photo:
        raise ValueError(f"These products have no photo to start from: {', '.join(without_photo)}")
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            requested_by=user, size_tier=request.size_tier,
            reference_count=request.reference_count, estimated_cost=estimated_cost,
        )
        batch.presets.set(request.presets)
        latest = {
            (row["product"], row["preset"]): row["v"]
            for row in GeneratedAsset.objects.filter(product__in=request.products, preset__in=request.presets)
            .values("product", "preset").annotate(v=Max("version"))
        }
        for product in request.products:
            for preset in request.presets:
                asset = GeneratedAsset.objects.create(
                    batch=batch, product=product, preset=preset,
                    version=latest.get((product.pk, preset.pk), 0) + 1,
                    aspect_ratio=preset.aspect_ratio, size_tier=request.size_tier,
                    reference_count=request.reference_count,
                )
                asset_queue(asset=asset, user=user, note=f"requested in batch {batch.pk}")
    return batch


def asset_queue(*, asset: GeneratedAsset, user=None, note: str = "") -> None:
    """Log the asset as queued and send it to a worker once the transaction commits."""
    AssetEvent.objects.create(asset=asset, to_status=AssetStatus.QUEUED, user=user, note=note)
    enqueue_after_commit(generate_asset, asset.pk)
