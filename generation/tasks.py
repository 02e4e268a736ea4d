"""The Dramatiq actors of the generation pipeline: ids in, the work in generation.pipeline.

Two actors run the same pipeline, one per lane (generation.services): `generate_asset_now` on a
queue of its own with the higher priority (a lower number), so a worker takes an interactive
message before any bulk one it holds, and `generate_asset` for bulk batches, which dispatches
the next bulk assets whenever one of its messages ends.

How one worker host keeps dozens of calls in flight: threads. The Procfile runs one process of
72 threads: GENERATION_BULK_MESSAGES (64) bulk messages at most, and 8 threads that bulk work
can never all take, for interactive messages. A thread costs little memory and, here, no
database connection while it waits: the pipeline closes its connection before every provider
call (core.openrouter) and after every message, and on PostgreSQL the process's threads share
a pool of DATABASE_POOL_MAX_SIZE (24) connections. bench/worker_threads.py measured this with
the Procfile's worker line against the test server: at 2 s a call, 64 calls in flight at peak
(43 median over a 320-image drop, ramp-up included), 24 database connections, 383 MiB for the
worker's processes, 313 images a minute; at 5 s, 57 in flight median, the same 24 connections
and 380 MiB; with 200 threads and 192 bulk messages at 5 s, 192 calls in flight at peak, 25
connections and 401 MiB (threads are cheap: raise both for a provider that admits more).
Without the pool the 2 s run peaked at 64 connections (every thread at the database at once
after a round of calls ends together).

Why not gevent or asyncio: the ORM, the openai client, Pillow and Milvus's gRPC client are
blocking code that threads run as they are. gevent would need all of them patched (gRPC and
psycopg need extra shims to cooperate), and CPU work such as encoding images would stall every
greenlet of the process; asyncio would mean a second, async pipeline, with the ORM still run in
threads underneath. Why one process: the work between calls is short, a second process would
double the memory (each loads Django, Pillow and the clients) and the connection pool without
adding calls in flight; add processes or hosts when one process's CPU is the limit.
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
# waits in the thread, then a fresh message is sent for later (pipeline.RateLimited); so is
# waiting for the index (pipeline.WaitingForIndex).
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
    except pipeline.SendLater as exc:
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
