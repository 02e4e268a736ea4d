"""A channel's performance export for the demo: made-up but steady figures for every day each
published image was live, in the CSV `manage.py import_performance` reads. The same images and
days give the same file, so a closing note or a test can show what an import changes."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date, timedelta

from django.utils import timezone

from generation.models import GeneratedAsset
from performance.matching import day_bounds, live_windows

HEADER = ["sku", "channel", "date", "impressions", "clicks", "add_to_carts", "orders", "revenue"]


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by the parts: the same image and day, the same figures."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def sample_performance_rows(*, days: int = 30, today: date | None = None) -> list[list[object]]:
    """One row per published image and day of the last `days` (up to yesterday) it was live
    the whole day. Each image has its own click-through rate, between 0.5 % and 6 %."""
    today = today or timezone.localdate()
    assets = {
        asset.pk: asset
        for asset in GeneratedAsset.objects.filter(events__to_status="published")
        .select_related("product", "preset")
        .distinct()
    }
    windows = live_windows(product_ids={asset.product_id for asset in assets.values()})
    rows = []
    for key in sorted(windows):  # by product and preset id: the same order each time
        spans = windows[key]
        for ago in range(days, 0, -1):
            day = today - timedelta(days=ago)
            start, end = day_bounds(day)
            live = [w for w in spans if w.start <= start and (w.end is None or w.end >= end)]
            if len(live) != 1 or live[0].asset_id not in assets:
                continue
            asset = assets[live[0].asset_id]
            rate = 0.005 + 0.055 * _unit(asset.product.sku, asset.preset.name, asset.version)
            impressions = 600 + int(900 * _unit(asset.pk, day))
            clicks = round(impressions * rate * (0.8 + 0.4 * _unit("clicks", asset.pk, day)))
            carts = round(clicks * 0.2)
            orders = round(clicks * 0.06)
            price = asset.product.price
            rows.append(
                [
                    asset.product.sku,
                    asset.preset.name,
                    day.isoformat(),
                    impressions,
                    clicks,
                    carts,
                    orders,
                    f"{price * orders:.2f}" if price is not None else "",
                ]
            )
    return rows


def sample_performance_csv(*, days: int = 30, today: date | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(sample_performance_rows(days=days, today=today))
    return buffer.getvalue().encode()
