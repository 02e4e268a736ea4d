"""The Dramatiq actors of the generation pipeline: ids in, the work in generation.pipeline.

Two actors run the same pipeline, one per lane (generation.services): `generate_asset_now` on a
queue of its own with the higher priority (a lower number), so a worker takes an interactive
message before any bulk one it holds, and `generate_asset` for bulk batches, which dispatches
the next bulk assets whenever one of its messages ends.
"""

import logging

import dramatiq
from django.conf import settings
from django.db import connection

from core.queue import retry_message, worker_name
from generation import notifications, pipeline, services

logger = logging.getLogger(__name__)

INTERACTIVE_PRIORITY, BULK_PRIORITY = 0, 10


# The pipeline decides retries (RetryLater carries the delay, e.g. Retry-After) and counts the
# attempts on the asset; the actor's limit is the same number, so Dramatiq adds no policy of
# its own (see core.openrouter). Waiting for the rate limit is not an attempt: the pipeline
# waits in the thread, then a fresh message is sent for later (pipeline.RateLimited).
@dramatiq.actor(
    queue_name="generation",
    priority=BULK_PRIORITY,
    max_retries=settings.GENERATION_MAX_ATTEMPTS,
    time_limit=settings.GENERATION_TIME_LIMIT_SECONDS * 1000,
)
def generate_asset(asset_id: int) -> None:
    try:
        _run(asset_id)
    finally:
        try:
            services.assets_dispatch()  # a place in the workers' hands may be free now
        except Exception:  # noqa: BLE001 - database or broker away: the periodic job dispatches
            logger.warning("could not dispatch bulk assets", exc_info=True)
        _close_connection()


@dramatiq.actor(
    queue_name="generation-interactive",
    priority=INTERACTIVE_PRIORITY,
    max_retries=settings.GENERATION_MAX_ATTEMPTS,
    time_limit=settings.GENERATION_TIME_LIMIT_SECONDS * 1000,
)
def generate_asset_now(asset_id: int) -> None:
    try:
        _run(asset_id)
    finally:
        _close_connection()


def _run(asset_id: int) -> None:
    try:
        pipeline.asset_run(asset_id=asset_id, worker=worker_name())
    except pipeline.RateLimited as exc:
        services.asset_send_later(asset_id=asset_id, delay=exc.delay)
    except pipeline.RetryLater as exc:
        raise retry_message(str(exc), delay=exc.delay) from None


def _close_connection() -> None:
    """An idle thread keeps no database connection: a worker host's connections are its
    threads at work, not its threads."""
    if not connection.in_atomic_block and not connection.allow_thread_sharing:
        connection.close()


@dramatiq.actor(queue_name="default", max_retries=5)
def notify_rejection(asset_id: int) -> None:
    notifications.rejection_notify(asset_id=asset_id)
