"""Demo only: published images with a past, so that a channel export has days to report.

A freshly published image has no whole day live yet, so `make_sample_performance` has nothing
to write for it and the loop (proven images as references) has nothing to learn from. This
makes images of the given products the real way (the pipeline, with the offline providers:
nothing is paid), approves and publishes them as the given user, and then moves each
publication back in the image's status log by `days` days, saying so in the log itself.
Never use it on a real catalog: the status log is the record of what happened.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.db import transaction

from catalog.models import Product
from generation.models import AssetEvent, AssetStatus, ChannelPreset, GeneratedAsset
from generation.pipeline import RetryLater, asset_run
from generation.providers.base import get_image_generator, get_quality_checker, get_style_analyst
from generation.review import asset_approve, asset_publish
from generation.services import BatchRequest, batch_create

NOTE = "Demo history (make_sample_history): this publication was moved {days} day(s) back."


class HistoryError(Exception):
    pass


def offline_providers() -> bool:
    return all(
        provider.is_offline
        for provider in (get_style_analyst(), get_image_generator(), get_quality_checker())
    )


def published_in_the_past(
    *, products: list[Product], preset: ChannelPreset, user, days: int, references: int = 3
) -> list[GeneratedAsset]:
    """One published image per product on `preset`, published `days` days ago as far as the
    status log says."""
    if not offline_providers():
        raise HistoryError(
            "Demo history is made with the offline providers only (nothing paid); the "
            "providers configured now are not all offline."
        )
    batch = batch_create(
        user=None,  # requested by this command: the user then approves it (four eyes)
        request=BatchRequest(products, [preset], "0.5K", references),
        estimated_cost=Decimal("0"),
    )
    published = []
    for asset in batch.assets.select_related("product").order_by("product__sku"):
        # Run here; with a worker running, it may have claimed the image first: then wait.
        try:
            asset_run(asset_id=asset.pk, worker="make_sample_history")
        except RetryLater:
            pass
        asset = _finished(asset)
        if asset.status != AssetStatus.IN_REVIEW:
            raise HistoryError(
                f"{asset.product.sku}: the image ended {asset.status}: "
                f"{asset.failure_reason or asset.last_error}"
            )
        asset = asset_publish(asset=asset_approve(asset=asset, user=user), user=user)
        _moved_back(asset, days)
        published.append(asset)
    return published


def _finished(asset: GeneratedAsset, timeout: float = 300) -> GeneratedAsset:
    deadline = time.monotonic() + timeout
    asset.refresh_from_db()
    while asset.status in AssetStatus.running() and time.monotonic() < deadline:
        time.sleep(0.5)
        asset.refresh_from_db()
    return asset


def _moved_back(asset: GeneratedAsset, days: int) -> None:
    with transaction.atomic():
        event = asset.events.filter(to_status=AssetStatus.PUBLISHED).latest("created_at", "pk")
        AssetEvent.objects.filter(pk=event.pk).update(
            created_at=event.created_at - timedelta(days=days),
            note=(event.note + " " if event.note else "") + NOTE.format(days=days),
        )
