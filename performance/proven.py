"""Proven promo images: published images whose CTR on their channel preset beat its average.

The loop from the channels back into generation: `generation.references` asks this finder
(registered when the app starts) for the proven images of a preset and category, picks the
ones of the products most like the new product, and sends them as style references, weighted
by how much they beat the average.

An image is proven on its preset when
- it is published now (a replaced or withdrawn image is not what the channel shows any more);
- it has at least PERFORMANCE_PROVEN_MIN_IMPRESSIONS impressions on that preset, over every
  imported day;
- the lower end of its CTR's 95 % Wilson interval is above the preset's average CTR, pooled
  over the preset's other images (`stats.credibly_above`; the image itself is left out, so a
  preset's one big image is compared with the rest, not with itself).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, Sum

from generation.models import AssetStatus, ChannelPreset, GeneratedAsset
from generation.references import ProvenImage
from performance.models import ChannelDay
from performance.stats import credibly_above, wilson_interval


def proven_images(
    preset: ChannelPreset, category: str, exclude_product_id: int
) -> list[ProvenImage]:
    """The proven images of `preset` showing products of `category`, but not the product
    `exclude_product_id` itself (generation.references' finder)."""
    return _proven(
        preset.pk,
        Q(asset__status=AssetStatus.PUBLISHED, asset__product__category=category)
        & ~Q(asset__product_id=exclude_product_id),
    )


def proven_on(asset: GeneratedAsset, preset_id: int) -> ProvenImage | None:
    """The image as a proven image of the preset, or None when it is not one (now)."""
    found = _proven(preset_id, Q(asset=asset, asset__status=AssetStatus.PUBLISHED))
    return found[0] if found else None


def proven_asset_ids() -> list[int]:
    """Every image proven on its preset now, whatever its category: one pass per preset
    with figures."""
    presets = ChannelDay.objects.values_list("preset_id", flat=True).distinct().order_by()
    return [
        image.asset.pk
        for preset_id in presets
        for image in _proven(preset_id, Q(asset__status=AssetStatus.PUBLISHED))
    ]


def _proven(preset_id: int, images: Q) -> list[ProvenImage]:
    """The proven images of the preset among `images` (a filter on its channel days): two
    grouped queries, then the statistics per image."""
    days = ChannelDay.objects.filter(preset_id=preset_id)
    pooled = days.aggregate(impressions=Sum("impressions"), clicks=Sum("clicks"))
    if not pooled["impressions"]:
        return []
    per_image = (
        days.filter(images)
        .values("asset")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
        .filter(impressions__gte=settings.PERFORMANCE_PROVEN_MIN_IMPRESSIONS)
    )
    proven = []
    for row in per_image:
        impressions, clicks = row["impressions"], row["clicks"]
        others = pooled["impressions"] - impressions
        if not others:
            continue  # the preset's only image: no average to beat
        baseline = (pooled["clicks"] - clicks) / others
        if not credibly_above(
            clicks,
            impressions,
            baseline,
            min_trials=settings.PERFORMANCE_PROVEN_MIN_IMPRESSIONS,
        ):
            continue
        low, high = wilson_interval(clicks, impressions)
        proven.append((row["asset"], impressions, clicks, low, high, baseline))
    assets = GeneratedAsset.objects.select_related("product", "preset").in_bulk(
        [row[0] for row in proven]
    )
    return [
        ProvenImage(assets[pk], impressions, clicks, low, high, baseline)
        for pk, impressions, clicks, low, high, baseline in proven
    ]
