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
from django.db.models.functions import Cast, Coalesce, NullIf

from performance.models import ChannelDay
from performance.proven import proven_asset_ids
from performance.stats import DEFAULT_MIN_TRIALS, Rate, rate


@dataclass(frozen=True)
class PresetTotals:
    """One image's figures on one channel preset, summed over every imported day."""

    preset: str
    preset_id: int
    days: int
    first: date
    last: date
    impressions: int
    clicks: int
    add_to_carts: int
    orders: int
    revenue: Decimal | None

    @property
    def ctr_rate(self) -> Rate:
        """Clicks per impression, with its interval."""
        return rate(self.clicks, self.impressions)

    @property
    def conversion_rate(self) -> Rate | None:
        """Orders per click, with its interval; None when the channel counted more orders than
        clicks (an order that followed a view and no click): no rate per click to give, rather
        than a made-up one."""
        return rate(self.orders, self.clicks) if self.orders <= self.clicks else None


def asset_totals(*, asset_id: int) -> list[PresetTotals]:
    """The image's totals per channel preset, by preset name."""
    rows = (
        ChannelDay.objects.filter(asset_id=asset_id)
        .values("preset__name", "preset_id")
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


@dataclass(frozen=True)
class Pooled:
    """Figures summed over a group of images (a preset's, a category's on a preset): the
    average an image is set against is the group's clicks over its impressions, not a mean of
    the images' rates, so an image shown ten times weighs as little as it says."""

    images: int
    impressions: int
    clicks: int
    orders: int

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion(self) -> float | None:
        """Orders per click; None without clicks, or with more orders than clicks (channels
        count orders after a view too): that is no rate to compare with."""
        return self.orders / self.clicks if 0 < self.clicks and self.orders <= self.clicks else None


def pooled_totals(*, preset_id: int, leave_out_asset_id: int, category: str = "") -> Pooled:
    """Every imported day on the preset but those of the image left out, summed; only the
    images of products of `category` when one is given. The image itself is left out, as
    `performance.stats.credibly_above` advises: one that has most of a preset's impressions
    would otherwise be measured mostly against itself."""
    days = ChannelDay.objects.filter(preset_id=preset_id).exclude(asset_id=leave_out_asset_id)
    if category:
        days = days.filter(asset__product__category=category)
    return Pooled(
        **days.aggregate(
            images=Count("asset", distinct=True),
            impressions=Coalesce(Sum("impressions"), 0),
            clicks=Coalesce(Sum("clicks"), 0),
            orders=Coalesce(Sum("orders"), 0),
        )
    )


@dataclass(frozen=True)
class AssetCounts:
    """One image's impressions and clicks on its own preset, for a variant comparison."""

    asset_id: int
    impressions: int
    clicks: int


def sibling_counts(*, product_id: int, preset_id: int) -> dict[int, AssetCounts]:
    """The impressions and clicks of every image of the product on the preset that has
    figures there, by asset id: every version and variant, whether they were live in turn
    (a new version replacing the old) or one after another as candidates of one version."""
    rows = (
        ChannelDay.objects.filter(
            asset__product_id=product_id, asset__preset_id=preset_id, preset_id=preset_id
        )
        .values("asset")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
        .order_by("asset")
    )
    return {
        row["asset"]: AssetCounts(row["asset"], row["impressions"], row["clicks"]) for row in rows
    }


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


# The bands of the last 30 days' figures the asset list and the gallery filter by: the value
# in the address, what it says, and the rows it keeps (on `with_recent_figures`' annotations).
RECENT_BANDS = {
    "yes": ("With figures", {"recent_impressions__isnull": False}),
    "enough": (
        f"With {DEFAULT_MIN_TRIALS:,}+ impressions (enough to compare)",
        {"recent_impressions__gte": DEFAULT_MIN_TRIALS},
    ),
    "no": ("Without figures", {"recent_impressions__isnull": True}),
    # over every imported day, not 30: what the next requests take as references
    "proven": ("Proven: a style reference for new images", None),
}


def in_recent_band(assets, *, band: str):
    """The assets (annotated by `with_recent_figures`) in one of RECENT_BANDS; all of them
    for any other value."""
    if band not in RECENT_BANDS:
        return assets
    if band == "proven":
        return assets.filter(pk__in=proven_asset_ids())
    return assets.filter(**RECENT_BANDS[band][1])


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
