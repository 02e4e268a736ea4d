"""Reading the imported figures: an image's totals per channel preset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, NullIf

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


RECENT_DAYS = 30  # "the last 30 days" of the asset list's figures


def with_recent_figures(assets, *, today: date, days: int = RECENT_DAYS):
    """The assets annotated with their impressions, clicks and CTR over the last `days` days
    up to `today` (recent_impressions, recent_clicks, recent_ctr; None without figures), each
    a subquery, so the list sorts and filters by them in its one query."""
    recent = ChannelDay.objects.filter(
        asset=OuterRef("pk"), date__gt=today - timedelta(days=days), date__lte=today
    )

    def total(field: str):
        summed = recent.values("asset").annotate(total=Sum(field)).values("total")
        return Subquery(summed, output_field=IntegerField())

    return assets.annotate(
        recent_impressions=total("impressions"), recent_clicks=total("clicks")
    ).annotate(
        recent_ctr=Cast(F("recent_clicks"), FloatField())
        / NullIf(Cast(F("recent_impressions"), FloatField()), Value(0.0))
    )


def recent_ranked(*, today: date, min_impressions: int, days: int = RECENT_DAYS):
    """Each image's impressions, clicks and CTR over the last `days` days, as rows of
    (asset, impressions, clicks, ctr), for images with at least `min_impressions`: one GROUP
    BY over those days' rows (the date index), not a subquery per image."""
    return (
        ChannelDay.objects.filter(date__gt=today - timedelta(days=days), date__lte=today)
        .values("asset")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
        .filter(impressions__gte=max(min_impressions, 1))
        .annotate(ctr=Cast(F("clicks"), FloatField()) / Cast(F("impressions"), FloatField()))
    )
