"""The dashboard's performance panel: the best and worst images of the last 30 days."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from generation.models import GeneratedAsset
from performance.display import interval_shown
from performance.selectors import RECENT_DAYS, recent_ranked
from performance.stats import rate

SHOWN = 5  # images per list
# An image ranks only with this many impressions in the 30 days: below, its CTR is mostly
# chance. A fixed floor until the statistics (performance.stats) rank by their intervals.
MIN_IMPRESSIONS = 1000


def performers_panel() -> dict:
    """The images with the highest and the lowest CTR over the last RECENT_DAYS days, among
    those with at least MIN_IMPRESSIONS impressions; an image is in one list at most."""
    ranked = recent_ranked(today=timezone.localdate(), min_impressions=MIN_IMPRESSIONS)
    best = list(ranked.order_by("-ctr", "asset")[:SHOWN])
    shown = {row["asset"] for row in best}
    worst = [row for row in ranked.order_by("ctr", "asset")[:SHOWN] if row["asset"] not in shown]
    assets = GeneratedAsset.objects.select_related("product", "preset").in_bulk(
        [row["asset"] for row in best + worst]
    )
    return {
        "days": RECENT_DAYS,
        "min_impressions": MIN_IMPRESSIONS,
        "best": [_row(assets[row["asset"]], row) for row in best],
        "worst": [_row(assets[row["asset"]], row) for row in worst],
        "url": reverse("admin:generation_generatedasset_changelist") + "?status=all&figures=yes",
    }


def _row(asset: GeneratedAsset, figures: dict) -> dict:
    return {
        "asset": asset,
        "url": reverse("admin:generation_generatedasset_change", args=[asset.pk]),
        "ctr": f"{figures['ctr']:.2%}",
        "impressions": figures["impressions"],
        "clicks": figures["clicks"],
        # a closed form per shown row: cheap beside the one query
        "interval": interval_shown(rate(figures["clicks"], figures["impressions"])),
    }
