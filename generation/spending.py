"""Cost control: the price table and the optional monthly spending cap.

Before every paid call the pipeline reserves the call's worst-case cost; the reservation is
checked against the cap under a row lock, so concurrent workers can never together pass it.
After the call the reservation is replaced by what the call really cost.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generation.models import MonthlySpend


class SpendingCapReached(Exception):
    """A paid call would take this month's spending past MONTHLY_SPENDING_CAP."""


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


def _month_row() -> MonthlySpend:
    first_day = timezone.localdate().replace(day=1)
    MonthlySpend.objects.get_or_create(month=first_day)
    return MonthlySpend.objects.select_for_update().get(month=first_day)


def month_spent() -> Decimal:
    row = MonthlySpend.objects.filter(month=timezone.localdate().replace(day=1)).first()
    return row.spent if row else Decimal("0")


@contextmanager
def paid_call(worst_case: Decimal):
    """Reserve `worst_case` for the call inside the block; yields a setter for the real cost.

        with paid_call(Decimal("0.101")) as settle:
            result = provider.generate(...)
            settle(result.cost or Decimal("0.101"))

    Raises SpendingCapReached before the call when the cap would be passed. If the block
    fails, the reservation is released and nothing is counted as spent.
    """
    cap = Decimal(settings.MONTHLY_SPENDING_CAP) if settings.MONTHLY_SPENDING_CAP else None
    with transaction.atomic():
        row = _month_row()
        if cap is not None and row.spent + row.reserved + worst_case > cap:
            raise SpendingCapReached(
                f"The monthly spending cap of ${cap} would be passed: ${row.spent} spent and "
                f"${row.reserved} reserved this month, and this call may cost ${worst_case}."
            )
        MonthlySpend.objects.filter(pk=row.pk).update(reserved=F("reserved") + worst_case)
    actual: list[Decimal] = []
    try:
        yield actual.append
    finally:
        spent = actual[-1] if actual else Decimal("0")
        MonthlySpend.objects.filter(pk=row.pk).update(
            reserved=F("reserved") - worst_case, spent=F("spent") + spent)
