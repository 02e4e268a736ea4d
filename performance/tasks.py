"""The Dramatiq actor of performance imports: an id in, the work in performance.services."""

import dramatiq

from performance.services import performance_import_write


# One message per confirmed import; a message delivered again (a worker died half way)
# writes the rest, as every chunk compares with what is stored.
@dramatiq.actor(queue_name="imports", max_retries=5, time_limit=3_600_000)
def write_performance_import(import_id: int) -> None:
    performance_import_write(job_id=import_id)
