"""The ledger against the provider's own books: what OpenRouter billed that we did not book.

OpenRouter bills a non-streaming call when it has produced the answer, whether or not anybody
reads it. A worker killed while its call is in flight, or a call that outlives
OPENROUTER_TIMEOUT, is billed without a line in our ledger. `spend_reconcile` finds that money:

1. Per generation: every booked call with a generation id is looked up once in OpenRouter's
   records (`GET /generation?id=`); its `provider_cost` is kept beside our `cost`, and calls
   that differ are counted (the difference itself is part of step 3's figure).
2. Reservations that may have been billed (in doubt after a timeout or a lost connection, or
   left behind by a dead worker past their expiry) are settled once the call they stood for
   has certainly ended at the provider: SPENDING_SETTLE_AFTER_SECONDS after it started. Until
   then they keep counting against the cap.
3. Per key: OpenRouter's `usage` of the key (`GET /key`, all time) minus the baseline (what the
   key had spent before the ledger started), minus every booked call, minus the reservations
   still unsettled, is spend nobody booked. The ledger's "unattributed provider spend" is kept
   equal to it (never below 0): a run books the difference from what earlier runs booked, with
   the time window it covers, so the month's total and the spending cap count it.

Why step 3 never books a call twice: under the month's lock (the lock every booking takes)
each call the key has paid for is either booked, still reserved, or neither; only the last is
unattributed. A later booking of a call that was counted as unattributed (a kept answer booked
by a redelivered task after its reservation was settled) lowers the figure at the next run.

This only works when no other application uses the same key: give the studio its own.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core import openrouter
from core.models import MonthlySpend, ProviderCall, SpendReconcile, SpendReservation
from core.openrouter import ProviderError
from core.spending import month_locked

logger = logging.getLogger(__name__)

GENERATIONS_PER_RUN = 200  # lookups per run; the rest wait for the next one
CENT_FRACTION = Decimal("0.000001")  # the ledger's precision


def spend_reconcile() -> SpendReconcile | None:
    """Compare the ledger with the provider's account and book the difference; None when no
    provider is configured (offline: nothing is paid)."""
    if not settings.OPENROUTER_API_KEY:
        return None
    run = SpendReconcile()
    try:
        run.generations_checked, run.generations_differing = _check_generations()
        usage = openrouter.account_usage()
    except ProviderError as exc:
        run.error = f"Could not read the provider's account: {exc}"
        run.save()
        logger.warning("spending reconcile: %s", run.error)
        return run
    with transaction.atomic():
        month = month_locked()  # no booking or reservation moves while we count
        now = timezone.now()
        run.settled = _settle(now)
        run.key_usage = usage
        run.attributed = _sum(ProviderCall.objects.exclude(kind=ProviderCall.Kind.UNATTRIBUTED))
        booked_before = _sum(ProviderCall.objects.filter(kind=ProviderCall.Kind.UNATTRIBUTED))
        run.pending = _sum(SpendReservation.objects.all(), "amount")
        run.baseline = _baseline(usage, run)
        if run.baseline is None:
            run.note = (
                "The key's baseline is taken at the first run with no call in flight; "
                "calls were in flight."
            )
            run.unattributed = booked_before
            run.save()
            return run
        target = max(usage - run.baseline - run.attributed - run.pending, Decimal("0"))
        delta = (target - booked_before).quantize(CENT_FRACTION)
        run.unattributed = booked_before + delta
        run.booked = delta
        run.save()
        if delta != 0:
            _book_unattributed(run, month, delta, now)
    return run


def _sum(calls, field: str = "cost") -> Decimal:
    """The exact sum of a field. (SQLite's SUM adds decimals as floats: over thousands of calls
    it is off in the sixth decimal, and the reconcile would book that as spend.)"""
    return sum(calls.values_list(field, flat=True).iterator(), Decimal("0"))


def _baseline(usage: Decimal, run: SpendReconcile) -> Decimal | None:
    """The key's spend before the ledger counted: from the first run that took it, or taken now
    when nothing is in flight (a call in flight would be counted as spent before)."""
    earlier = SpendReconcile.objects.filter(baseline__isnull=False).order_by("pk").first()
    if earlier is not None:
        return earlier.baseline
    if run.pending:
        return None  # wait for a moment with no call in flight
    return max(usage - run.attributed, Decimal("0"))


def _settle(now) -> int:
    """Drop the reservations of calls that may have been billed and have certainly ended at the
    provider by now; from here on the key's usage says what they cost."""
    started_before = now - timedelta(seconds=settings.SPENDING_SETTLE_AFTER_SECONDS)
    over = Q(in_doubt=True) | Q(expires_at__lte=now)
    settled, _ = SpendReservation.objects.filter(over, created_at__lte=started_before).delete()
    return settled


def _book_unattributed(run: SpendReconcile, month: MonthlySpend, delta: Decimal, now) -> None:
    previous = (
        SpendReconcile.objects.filter(baseline__isnull=False, error="")
        .exclude(pk=run.pk)
        .order_by("-pk")
        .first()
    )
    ProviderCall.objects.create(
        key=f"reconcile:{run.pk}",
        kind=ProviderCall.Kind.UNATTRIBUTED,
        subject="provider account",
        model="(not known)",
        month=month,
        cost=delta,
        cost_source="provider account",
        usage={
            "key_usage": str(run.key_usage),
            "baseline": str(run.baseline),
            "attributed": str(run.attributed),
            "pending": str(run.pending),
        },
        window_start=previous.created_at if previous else None,
        window_end=now,
        rejected_reason=(
            "Billed by the provider with no answer booked here: calls in flight when a worker "
            "died or that outlived the timeout (a negative line corrects an earlier estimate)."
        ),
    )
    MonthlySpend.objects.filter(pk=month.pk).update(spent=F("spent") + delta)


def _check_generations() -> tuple[int, int]:
    """Look up booked calls' generations in the provider's records; (checked, differing)."""
    waiting = ProviderCall.objects.filter(provider_cost__isnull=True).exclude(generation_id="")
    checked = differing = 0
    for call in waiting.order_by("pk")[:GENERATIONS_PER_RUN]:
        cost = openrouter.generation_cost(call.generation_id)
        if cost is None:
            continue  # the record is not there yet: next run
        ProviderCall.objects.filter(pk=call.pk).update(provider_cost=cost)
        checked += 1
        differing += cost != call.cost
    return checked, differing


def unattributed_total() -> Decimal:
    """All unattributed provider spend booked so far."""
    return _sum(ProviderCall.objects.filter(kind=ProviderCall.Kind.UNATTRIBUTED))
