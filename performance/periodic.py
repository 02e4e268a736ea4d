"""The performance app's periodic job, sent by the scheduler and registered when the app is
ready, so the worker and the scheduler both know it."""

import dramatiq
from dramatiq_crontab import interval

from performance.jobs import performance_imports_sweep


@interval(seconds=300)
@dramatiq.actor(queue_name="imports", max_retries=0)
def sweep_performance_imports() -> None:
    """Send again the imports whose message was lost; drop those left unconfirmed a day."""
    performance_imports_sweep()
