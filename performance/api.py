"""Channel performance over the API, for a token with `performance:read` only: an image's
totals per channel preset with their rates and 95 % Wilson intervals
(/api/v1/assets/{id}/performance), and the imported days themselves (/api/v1/channel-days).

The figures are staff-only everywhere else (the admin), so a token shows them only when its
owner could read them there: staff with *Can view channel day* (and *Can view generated
asset*, as the answer names the image's product). No other payload carries a figure: the
asset endpoints and the feed know nothing of this module (generation never imports
performance), and these routes are mounted beside theirs in config.api.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from core.api.auth import require
from core.api.pages import page
from core.api.problems import ApiProblem
from core.ids import MAX_ID
from core.models import ApiScope, ApiToken
from generation.models import GeneratedAsset
from performance.models import ChannelDay
from performance.selectors import PresetTotals, asset_totals
from performance.stats import DEFAULT_CONFIDENCE, Rate

asset_figures = Router(tags=["performance"])
channel_days = Router(tags=["performance"])

VIEW_FIGURES = "performance.view_channelday"
VIEW_ASSETS = "generation.view_generatedasset"


def require_figures(request) -> ApiToken:
    """The calling token, when it has `performance:read` and its owner may read the figures
    in the admin (staff with both view permissions); otherwise a 403 naming what is missing."""
    token = require(request, ApiScope.PERFORMANCE_READ, VIEW_FIGURES, VIEW_ASSETS)
    if not token.owner.is_staff:
        raise ApiProblem(
            403,
            f"The token's owner {token.owner.get_username()!r} is not staff; performance "
            "figures are for staff only, and a token never does more than its owner.",
            "missing-permission",
        )
    return token


class RateOut(Schema):
    value: float | None = Field(description="As observed; null when there were no trials.")
    low: float | None = Field(description="The Wilson interval's lower bound.")
    high: float | None = Field(description="The Wilson interval's upper bound.")


class PresetFigures(Schema):
    preset: str = Field(description="The channel preset the figures were reported for.")
    days: int = Field(description="Days with figures.")
    first_day: date
    last_day: date
    impressions: int
    clicks: int
    add_to_carts: int
    orders: int
    revenue: Decimal | None = Field(description="Null when the files gave no revenue.")
    ctr: RateOut = Field(description="Clicks per impression.")
    conversion: RateOut = Field(
        description="Orders per click; null when the channel counted more orders than clicks "
        "(orders after a view, not a click), which no rate per click can say."
    )


class AssetPerformance(Schema):
    asset: int
    sku: str
    confidence: float = Field(description="Of every interval here (0.95: 95 %).")
    presets: list[PresetFigures] = Field(description="By preset name; empty without figures.")


def _rate_out(found: Rate | None) -> dict:
    if found is None:
        return {"value": None, "low": None, "high": None}
    return {"value": found.value, "low": found.low, "high": found.high}


def _preset_figures(totals: PresetTotals) -> dict:
    return {
        "preset": totals.preset,
        "days": totals.days,
        "first_day": totals.first,
        "last_day": totals.last,
        "impressions": totals.impressions,
        "clicks": totals.clicks,
        "add_to_carts": totals.add_to_carts,
        "orders": totals.orders,
        "revenue": totals.revenue,
        "ctr": _rate_out(totals.ctr_rate),
        "conversion": _rate_out(totals.conversion_rate),
    }


@asset_figures.get(
    "/{int:asset_id}/performance",
    response=AssetPerformance,
    summary="An image's performance",
)
def asset_performance(request, asset_id: int):
    """The image's figures on each channel preset, summed over every imported day, with CTR
    and conversion rate and their 95 % Wilson intervals. Needs `performance:read`, and an
    owner who is staff with *Can view channel day* and *Can view generated asset*."""
    require_figures(request)
    asset = get_object_or_404(GeneratedAsset.objects.select_related("product"), pk=asset_id)
    return {
        "asset": asset.pk,
        "sku": asset.product.sku,
        "confidence": DEFAULT_CONFIDENCE,
        "presets": [_preset_figures(totals) for totals in asset_totals(asset_id=asset.pk)],
    }


class ChannelDayOut(Schema):
    id: int
    asset: int
    sku: str
    preset: str
    date: date
    impressions: int
    clicks: int
    add_to_carts: int
    orders: int
    revenue: Decimal | None
    updated_at: datetime = Field(description="When an import last wrote these figures.")

    @staticmethod
    def resolve_asset(day: ChannelDay) -> int:
        return day.asset_id

    @staticmethod
    def resolve_sku(day: ChannelDay) -> str:
        return day.asset.product.sku

    @staticmethod
    def resolve_preset(day: ChannelDay) -> str:
        return day.preset.name


class ChannelDayPage(Schema):
    items: list[ChannelDayOut]
    next: str | None = Field(description="The next page's address; null on the last page.")


class ChannelDayFilters(Schema):
    asset: int | None = Field(None, ge=1, le=MAX_ID, description="A generated image's id.")
    sku: str | None = Field(None, description="The product's SKU.")
    preset: str | None = Field(None, description="A channel preset's name.")
    since: date | None = Field(None, description="Days on or after this date.")
    until: date | None = Field(None, description="Days on or before this date.")
    cursor: str | None = Field(None, description="From the previous page's `next`.")
    limit: int = Field(50, ge=1, le=settings.API_PAGE_SIZE_MAX)


@channel_days.get("", response=ChannelDayPage, summary="List channel days")
def channel_days_list(request, filters: Query[ChannelDayFilters]):
    """One row per image, channel preset and day as imported, in the order they were first
    imported (id order), filtered by image, SKU, preset and dates; follow `next` for more.
    Needs `performance:read`, as the image's performance does."""
    require_figures(request)
    days = ChannelDay.objects.select_related("asset__product", "preset")
    for name, lookup in (
        ("asset", "asset_id"),
        ("sku", "asset__product__sku"),
        ("preset", "preset__name"),
        ("since", "date__gte"),
        ("until", "date__lte"),
    ):
        if (value := getattr(filters, name)) is not None:
            days = days.filter(**{lookup: value})
    rows, next_url = page(request, days, key="id", limit=filters.limit, cursor=filters.cursor)
    return {"items": rows, "next": next_url}
