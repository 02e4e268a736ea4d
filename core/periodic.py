"""Spending's periodic job, sent by the scheduler (`manage.py crontab`, dramatiq-crontab)."""

import dramatiq
from django.conf import settings
from dramatiq_crontab import interval

from core.reconcile import spend_reconcile


@interval(seconds=settings.SPENDING_RECONCILE_INTERVAL_SECONDS)
@dramatiq.actor(max_retries=0)
def reconcile_spending() -> None:
    """Compare the ledger with the provider's account; settle reservations of calls that may
    have been billed unseen, and book what nobody booked as unattributed spend."""
    spend_reconcile()
