"""The Dramatiq actor of the generation pipeline: ids in, the work in generation.services."""

import os
import socket
import threading

import dramatiq
from django.conf import settings

from generation import services


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


# Retries are decided by the service (RetryLater carries the delay, e.g. Retry-After), so the
# actor's own limit is only a backstop above GENERATION_MAX_ATTEMPTS.
@dramatiq.actor(queue_name="generation", max_retries=20,
                time_limit=settings.GENERATION_TIME_LIMIT_SECONDS * 1000)
def generate_asset(asset_id: int) -> None:
    try:
        services.asset_run(asset_id=asset_id, worker=_worker_name())
    except services.RetryLater as exc:
        raise dramatiq.Retry(str(exc), delay=int(exc.delay * 1000)) from None
