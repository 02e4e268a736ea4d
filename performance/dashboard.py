"""The dashboard's performance panel: the best and worst images of the last 30 days."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from generation.models import GeneratedAsset
from performance.selectors import RECENT_DAYS, with_recent_figures

SHOWN = 5  # images per list
# An image ranks only with this many impressions in the 30 days: below, its CTR is mostly
# chance. A fixed floor until the statistics (performance.stats) rank by their intervals.
MIN_IMPRESSIONS = 1000


def performers_panel() -> dict:
    """The images with the highest and the lowest CTR over the last RECENT_DAYS days, among
    those with at least MIN_IMPRESSIONS impressions; an image is in one list at most."""
    ranked = (
        with_recent_figures(
            GeneratedAsset.objects.select_related("product", "preset"),
            today=timezone.localdate(),
        )
        .filter(recent_impressions__gte=MIN_IMPRESSIONS)
        .order_by("-recent_ctr", "pk")
    )
    best = list(ranked[:SHOWN])
    worst = [
        asset
        for asset in ranked.order_by("recent_ctr", "pk")[:SHOWN]
        if asset.pk not in {b.pk for b in best}
    ]
    return {
        "days": RECENT_DAYS,
        "min_impressions": MIN_IMPRESSIONS,
        "best": [_row(asset) for asset in best],
        "worst": [_row(asset) for asset in worst],
        "url": reverse("admin:generation_generatedasset_changelist") + "?status=all&figures=yes",
    }


def _row(asset: GeneratedAsset) -> dict:
    return {
        "asset": asset,
        "url": reverse("admin:generation_generatedasset_change", args=[asset.pk]),
        "ctr": f"{asset.recent_ctr:.2%}",
        "impressions": asset.recent_impressions,
        "clicks": asset.recent_clicks,
    }
