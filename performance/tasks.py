"""The Dramatiq actor of performance imports: an id in, the work in performance.jobs."""

import dramatiq

from performance.jobs import performance_import_step


# One message per step of an import: its check (a large file), then its write once confirmed.
# A message delivered again does the step again only if it is still to do; the sweeper
# (performance.periodic) sends again what lost its message.
@dramatiq.actor(queue_name="imports", max_retries=5, time_limit=3_600_000)
def step_performance_import(import_id: int) -> None:
    performance_import_step(job_id=import_id)
