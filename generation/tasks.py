"""The Dramatiq actor of the generation pipeline: ids in, the work in generation.pipeline."""

import dramatiq
from django.conf import settings

from core.queue import retry_message, worker_name
from generation import notifications, pipeline


# The pipeline decides retries (RetryLater carries the delay, e.g. Retry-After) and counts the
# attempts on the asset; the actor's limit is the same number, so Dramatiq adds no policy of
# its own (see core.openrouter).
@dramatiq.actor(
    queue_name="generation",
    max_retries=settings.GENERATION_MAX_ATTEMPTS,
    time_limit=settings.GENERATION_TIME_LIMIT_SECONDS * 1000,
)
def generate_asset(asset_id: int) -> None:
    try:
        pipeline.asset_run(asset_id=asset_id, worker=worker_name())
    except pipeline.RetryLater as exc:
        raise retry_message(str(exc), delay=exc.delay) from None


@dramatiq.actor(queue_name="default", max_retries=5)
def notify_rejection(asset_id: int) -> None:
    notifications.rejection_notify(asset_id=asset_id)
