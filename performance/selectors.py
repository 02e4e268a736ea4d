"""Reading the imported figures: an image's totals per channel preset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Count, Max, Min, Sum

from performance.models import ChannelDay


@dataclass(frozen=True)
class PresetTotals:
    """One image's figures on one channel preset, summed over every imported day."""

    preset: str
    days: int
    first: date
    last: date
    impressions: int
    clicks: int
    add_to_carts: int
    orders: int
    revenue: Decimal | None

    @property
    def ctr(self) -> float | None:
        """Clicks per impression, as observed: no interval (performance.stats gives those)."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def ctr_shown(self) -> str:
        return "—" if self.ctr is None else f"{self.ctr:.2%}"


def asset_totals(*, asset_id: int) -> list[PresetTotals]:
    """The image's totals per channel preset, by preset name."""
    rows = (
        ChannelDay.objects.filter(asset_id=asset_id)
        .values("preset__name")
        .annotate(
            days=Count("pk"),
            first=Min("date"),
            last=Max("date"),
            impressions=Sum("impressions"),
            clicks=Sum("clicks"),
            add_to_carts=Sum("add_to_carts"),
            orders=Sum("orders"),
            revenue=Sum("revenue"),
        )
        .order_by("preset__name")
    )
    return [PresetTotals(preset=row.pop("preset__name"), **row) for row in rows]
