"""Paying for model calls: reserve before, book what the provider billed after, and hold the cap.

Every paid call runs inside `paid_call`:

    with paid_call(kind=..., model=..., subject="asset:12", key="asset:12:image:1",
                   worst_case=Decimal("0.067"), owner=worker) as book:
        result = provider.generate(...)
        with transaction.atomic():
            call = book(cost=result.cost, usage=result.usage)   # the ledger row
            ...save the answer in the same transaction...

- Before the call its worst case is reserved under the month's row lock; the call is refused
  (SpendingCapReached) when spent + the live reservations + this one would pass
  MONTHLY_SPENDING_CAP. Concurrent workers therefore never pass the cap together.
- A reservation counts until the call is booked or is known not to have been billed (the
  provider answered an error). A call that may have been billed without our knowing keeps its
  reservation: a timeout or a lost connection marks it in doubt, a worker killed mid-call leaves
  it behind past its expiry. The spending reconcile (core.reconcile) settles those once the
  provider's account can tell, and books what the provider billed as unattributed spend.
- Booking replaces the reservation by what the provider said the answer cost (usage.cost), or
  the price table when it did not say. A provider error for an answer that was billed anyway
  (no image, malformed, blank) is booked too, with the reason. A charge above the
  reservation is booked in full; the caller learns it from `ProviderCall.overrun`.
- Booking is idempotent by key, so a redelivered task that finds a stored answer books it once,
  and drops whatever reservation is still held under that key.
- Each booked answer keeps the provider's generation id, so the reconcile can look it up in the
  provider's own records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.models import MonthlySpend, ProviderCall, SpendReservation
from core.openrouter import ProviderError, release_db_connection


class SpendingCapReached(Exception):
    """A paid call would take this month's spending past MONTHLY_SPENDING_CAP."""


def spending_cap() -> Decimal | None:
    return Decimal(settings.MONTHLY_SPENDING_CAP) if settings.MONTHLY_SPENDING_CAP else None


def month_locked() -> MonthlySpend:
    first_day = timezone.localdate().replace(day=1)
    MonthlySpend.objects.get_or_create(month=first_day)
    return MonthlySpend.objects.select_for_update().get(month=first_day)


def reserved_now(month: MonthlySpend) -> Decimal:
    """What the month's unsettled reservations hold (calls in flight, and calls that may have
    been billed until the reconcile settles them)."""
    return month.reservations.aggregate(total=Sum("amount"))["total"] or Decimal("0")


def current_month() -> MonthlySpend | None:
    """This month's row, read without a lock (None until its first paid call)."""
    return MonthlySpend.objects.filter(month=timezone.localdate().replace(day=1)).first()


def month_spent() -> Decimal:
    row = current_month()
    return row.spent if row else Decimal("0")


def spend_reserve(*, amount: Decimal, owner: str, subject: str, key: str = "") -> SpendReservation:
    """Hold `amount` against the cap for one call; raises SpendingCapReached instead."""
    cap = spending_cap()
    with transaction.atomic():
        month = month_locked()
        if cap is not None and amount > 0:  # a free call spends nothing, whatever the cap
            reserved = reserved_now(month)
            if month.spent + reserved + amount > cap:
                raise SpendingCapReached(
                    f"The monthly spending cap of ${cap} would be passed: ${month.spent} spent "
                    f"and ${reserved} reserved this month, and this call may cost ${amount}."
                )
        ttl = timedelta(seconds=settings.SPENDING_RESERVATION_SECONDS)
        return SpendReservation.objects.create(
            month=month,
            amount=amount,
            owner=owner,
            subject=subject,
            key=key,
            expires_at=timezone.now() + ttl,
        )


def spend_release(reservation: SpendReservation) -> None:
    """The call was not made or not billed: its reservation stops counting."""
    SpendReservation.objects.filter(pk=reservation.pk).delete()


def spend_in_doubt(reservation: SpendReservation, reason: str) -> None:
    """The call ended without an answer we could book and may have been billed: its
    reservation keeps counting until the reconcile settles it."""
    SpendReservation.objects.filter(pk=reservation.pk).update(in_doubt=True, note=reason[:1000])


def spend_book(
    *,
    key: str,
    kind: str,
    subject: str,
    model: str,
    cost: Decimal | None,
    price: Decimal,
    usage: dict | None = None,
    rejected_reason: str = "",
    reservation: SpendReservation | None = None,
) -> ProviderCall:
    """Book one billed answer (once per key) and drop its reservation.

    `cost` is what the provider said (None: it did not, and the price table's `price` counts).
    """
    with transaction.atomic():
        month = month_locked()
        call, created = ProviderCall.objects.get_or_create(
            key=key,
            defaults={
                "kind": kind,
                "subject": subject,
                "model": model,
                "month": month,
                "cost": price if cost is None else cost,
                "cost_source": "price table" if cost is None else "provider",
                "reserved": reservation.amount if reservation else price,
                "usage": usage or {},
                "rejected_reason": rejected_reason,
                "generation_id": str((usage or {}).get("generation_id") or ""),
            },
        )
        if created:
            MonthlySpend.objects.filter(pk=month.pk).update(spent=F("spent") + call.cost)
        if reservation is not None:
            spend_release(reservation)
        # A killed worker's reservation for this very answer (kept, then booked by the
        # redelivered task) is settled by the booking itself.
        SpendReservation.objects.filter(key=key).delete()
    return call


def overrun(call: ProviderCall) -> Decimal:
    """How much more the provider charged than was reserved for the call (0 when not)."""
    return max(call.cost - call.reserved, Decimal("0"))


@contextmanager
def paid_call(
    *, kind: str, model: str, subject: str, key: str, worst_case: Decimal, owner: str
) -> Iterator[Callable[..., ProviderCall]]:
    """Reserve `worst_case` for the call in the block; yields `book(cost=, usage=)`.

    A ProviderError that says the answer was billed is booked with its reason before it
    propagates; one that says the provider answered with an error (not billed) releases the
    reservation. Anything else that ends the block unbooked (a timeout, a lost connection, an
    error after the answer arrived, a booking rolled back with the caller's transaction)
    leaves the reservation in doubt for the reconcile to settle: the call may have been billed.
    """
    reservation = spend_reserve(amount=worst_case, owner=owner, subject=subject, key=key)
    # Preparing the call (encoding its images) and the call itself need no connection: give it
    # back now rather than hold it through that CPU work (core.openrouter.request).
    release_db_connection()

    def book(
        *, cost: Decimal | None, usage: dict | None = None, rejected_reason: str = ""
    ) -> ProviderCall:
        return spend_book(
            key=key,
            kind=kind,
            subject=subject,
            model=model,
            cost=cost,
            price=worst_case,
            usage=usage,
            rejected_reason=rejected_reason,
            reservation=reservation,
        )

    try:
        yield book
    except ProviderError as exc:
        if exc.billed and not ProviderCall.objects.filter(key=key).exists():
            book(cost=exc.cost, usage=exc.usage, rejected_reason=str(exc))
        _settle_after_call(reservation, key, exc if exc.in_doubt else None)
        raise
    except BaseException as exc:
        _settle_after_call(reservation, key, exc)
        raise
    _settle_after_call(reservation, key, None)


def _settle_after_call(
    reservation: SpendReservation, key: str, doubt: BaseException | None
) -> None:
    """Booked (perhaps in a transaction that rolled back since) or not billed: release; in
    doubt and not booked: keep it for the reconcile."""
    if doubt is None or ProviderCall.objects.filter(key=key).exists():
        spend_release(reservation)
    else:
        spend_in_doubt(reservation, f"{type(doubt).__name__}: {doubt}")


def subject_costs(subject: str) -> tuple[Decimal, dict]:
    """What a subject's booked answers cost in all, and per kind of call its usage and cost
    (rejected answers listed apart), for showing on the asset."""
    total, usage = Decimal("0"), {}
    for call in ProviderCall.objects.filter(subject=subject).order_by("created_at", "pk"):
        total += call.cost
        label = call.kind + (" (rejected)" if call.rejected_reason else "")
        entry = {**call.usage, "cost": str(call.cost)}
        if call.rejected_reason:
            entry["reason"] = call.rejected_reason[:200]
        usage[label if label not in usage else f"{label} {len(usage) + 1}"] = entry
    return total, usage
