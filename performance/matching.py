"""Which published image a channel's row is about: the one that was live for that SKU and
channel preset on that day, read from the assets' status log (generation's AssetEvent).

A published image's URL stays the same when a new version replaces it, so neither the SKU
nor the URL names the image alone: the day does. A day on which no image was live, or two
were (replaced that day), is left unmatched with the reason; it is never guessed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone

from catalog.models import Product
from generation.models import AssetEvent, AssetStatus, ChannelPreset, GeneratedAsset


@dataclass(frozen=True)
class LiveWindow:
    """From when to when (None: still) one asset was published."""

    asset_id: int
    version: int
    start: datetime
    end: datetime | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and (self.end is None or self.end > start)

    def __str__(self) -> str:
        until = f"until {_shown(self.end)}" if self.end else "still live"
        return f"v{self.version} from {_shown(self.start)} {until}"


def _shown(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day in the studio's time zone (TIME_ZONE), as the channel's report is read."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def live_windows(*, product_ids: Iterable[int]) -> dict[tuple[int, int], list[LiveWindow]]:
    """Every time each image of these products was published, by (product id, preset id)."""
    events = (
        AssetEvent.objects.filter(asset__product_id__in=set(product_ids))
        .filter(Q(to_status=AssetStatus.PUBLISHED) | Q(from_status=AssetStatus.PUBLISHED))
        .order_by("created_at", "pk")
        .values_list(
            "asset_id",
            "asset__product_id",
            "asset__preset_id",
            "asset__version",
            "to_status",
            "created_at",
        )
    )
    started: dict[int, datetime] = {}
    windows: dict[tuple[int, int], list[LiveWindow]] = defaultdict(list)
    for asset_id, product_id, preset_id, version, to_status, at in events:
        if to_status == AssetStatus.PUBLISHED:
            started[asset_id] = at
        elif asset_id in started:
            windows[product_id, preset_id].append(
                LiveWindow(asset_id, version, started.pop(asset_id), at)
            )
    open_assets = GeneratedAsset.objects.filter(pk__in=started).values_list(
        "pk", "product_id", "preset_id", "version"
    )
    for asset_id, product_id, preset_id, version in open_assets:
        windows[product_id, preset_id].append(
            LiveWindow(asset_id, version, started[asset_id], None)
        )
    return windows


@dataclass(frozen=True)
class Match:
    """The asset a row is about, or why there is none (asset_id None)."""

    asset_id: int | None
    preset_id: int | None
    reason: str = ""


class Matcher:
    """Matches rows to images, reading the products, presets and status log once per file."""

    def __init__(self, *, skus: Iterable[str]):
        self.products = dict(Product.objects.filter(sku__in=set(skus)).values_list("sku", "pk"))
        self.presets = {preset.name: preset for preset in ChannelPreset.objects.all()}
        self.windows = live_windows(product_ids=self.products.values())

    def match(self, *, sku: str, preset_name: str, day: date) -> Match:
        product_id = self.products.get(sku)
        if product_id is None:
            return Match(None, None, f"no product has the SKU {sku!r}")
        preset = self.presets.get(preset_name)
        if preset is None:
            return Match(None, None, f"no channel preset is named {preset_name!r}")
        windows = self.windows.get((product_id, preset.pk), [])
        if not windows:
            return Match(None, preset.pk, f"{sku} never had a published {preset.name} image")
        live = [window for window in windows if window.overlaps(*day_bounds(day))]
        if not live:
            known = "; ".join(map(str, windows[-3:]))
            return Match(
                None,
                preset.pk,
                f"no {preset.name} image of {sku} was live on {day} (published: {known})",
            )
        if len({window.asset_id for window in live}) > 1:
            both = "; ".join(map(str, live))
            return Match(
                None,
                preset.pk,
                f"{len(live)} images of {sku} were live on {day} ({both}); "
                "the day's figures cannot be split between them",
            )
        return Match(live[0].asset_id, preset.pk)
