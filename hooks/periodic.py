"""The webhooks' periodic job, sent by the scheduler (dramatiq-crontab) and registered when the
app is ready. On the default queue, so a backlog of webhooks never holds it back."""

import dramatiq
from dramatiq_crontab import interval

from hooks import delivery


@interval(seconds=30)
@dramatiq.actor(max_retries=0)
def requeue_lost_webhooks() -> None:
    """Send again the deliveries whose message was lost (see delivery.deliveries_requeue_lost)."""
    delivery.deliveries_requeue_lost()
