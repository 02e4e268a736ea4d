"""The Dramatiq actor of imports: an id in, the work in catalog.importer.jobs.

Apart from catalog.tasks because the import service builds on catalog.services, which sends
catalog.tasks' actors; the jobs find this actor through the broker by name.
"""

import dramatiq

from catalog.importer import jobs
from core.queue import retry_message, worker_name


# An import is one message: its check, or its write (resumed after the last committed chunk
# when a killed worker's message comes back). The sweeper sends stalled imports again.
@dramatiq.actor(
    queue_name="imports",
    max_retries=20,
    min_backoff=5_000,
    max_backoff=60_000,
    time_limit=6 * 3_600_000,
)
def run_import(import_id: int) -> None:
    try:
        jobs.import_job_run(job_id=import_id, worker=worker_name())
    except jobs.ImportBusy as exc:
        raise retry_message(str(exc), delay=exc.delay) from None
