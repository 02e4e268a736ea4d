"""The webhook actor: a delivery id in, one attempt of it (hooks.delivery) done.

On a queue of its own so slow receivers never hold back generation or imports. No Dramatiq
retries: the delivery row schedules its own, with the webhook backoff.
"""

import dramatiq

from core.queue import worker_name
from hooks import delivery


@dramatiq.actor(queue_name="webhooks", max_retries=0, time_limit=120_000)
def deliver_webhook(delivery_id: int) -> None:
    delivery.delivery_attempt(delivery_id=delivery_id, worker=worker_name())
