"""Run the periodic jobs, and keep running them through Redis outages.

dramatiq-crontab's `crontab` command holds a Redis lock so that only one scheduler sends the
jobs, however many hosts start one; when the lock is held elsewhere, or lost because Redis went
away, it stops. This command runs it again after a pause, so a standby scheduler takes over
and an outage heals by itself. SIGINT and SIGTERM stop both.
"""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

PAUSE_SECONDS = 5


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        stopping = False
        child: subprocess.Popen | None = None

        def stop(signum, frame):
            nonlocal stopping
            stopping = True
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping:
            child = subprocess.Popen([sys.executable, sys.argv[0], "crontab", "--no-heartbeat"])
            child.wait()
            if not stopping:
                self.stderr.write(
                    f"the scheduler stopped (exit {child.returncode}); "
                    f"starting it again in {PAUSE_SECONDS} s"
                )
                time.sleep(PAUSE_SECONDS)
