"""Spending's periodic job, sent by the scheduler (`manage.py crontab`, dramatiq-crontab)."""

import dramatiq
from dramatiq_crontab import interval

from core.spending import reservations_sweep


@interval(seconds=60)
@dramatiq.actor(max_retries=0)
def sweep_reservations() -> None:
    """Drop the expired reservations of calls whose worker died."""
    reservations_sweep()
