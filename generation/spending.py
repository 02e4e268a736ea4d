"""What promo images cost: the price table and a request's estimate. The monthly cap, the
reservations and the ledger are core.spending's, shared with the embedder."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings


def image_price(size_tier: str) -> Decimal:
    return Decimal(settings.IMAGE_PRICE_TABLE[size_tier])


def analysis_price() -> Decimal:
    return Decimal(settings.STYLE_ANALYSIS_PRICE_ESTIMATE)


@dataclass(frozen=True)
class Estimate:
    images: int
    unit_price: Decimal
    analysis_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.images * (self.unit_price + self.analysis_price)


def estimate(*, images: int, size_tier: str, offline: bool) -> Estimate:
    """What a batch will cost at most, from the price table (offline providers are free)."""
    if offline:
        return Estimate(images, Decimal("0"), Decimal("0"))
    return Estimate(images, image_price(size_tier), analysis_price())
