"""gunicorn's settings for the web (Procfile: `--config config/gunicorn.py`).

The access log's lines end with the request id.

Each gunicorn worker is a process with its own request counters; a scrape of /metrics reaches
one of them. With PROMETHEUS_MULTIPROC_DIR set before the workers start, prometheus_client keeps
every worker's counts in files there and /metrics adds them up (core/metrics.py). The folder is
this server's own (one per master process, unless the environment names one), empty at start,
and removed at exit.
"""

import os
import shutil
from pathlib import Path

_VAR = Path(__file__).resolve().parent.parent / "var"

# gunicorn's default access line, and the request id the app answered with (core/request_log.py),
# so an access line leads to the app's and the worker's lines of the same request.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
)


def on_starting(server):
    folder = Path(
        os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR", str(_VAR / "prometheus" / f"web-{os.getpid()}")
        )
    )
    shutil.rmtree(folder, ignore_errors=True)  # a killed process's counts would count on
    folder.mkdir(parents=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
