import time

from django.conf import settings
from django.core.management.base import BaseCommand

from catalog.tasks import reconcile_index


class Command(BaseCommand):
    help = ("Send the periodic tasks to the workers (the index reconcile, every "
            "INDEX_RECONCILE_INTERVAL_SECONDS). One such process per deployment.")

    def handle(self, *args, **options):
        interval = settings.INDEX_RECONCILE_INTERVAL_SECONDS
        self.stdout.write(f"Sending reconcile_index now and every {interval} s")
        time.sleep(5)  # let the broker and Milvus start with the rest of the stack
        while True:
            try:
                reconcile_index.send()
            except Exception as exc:  # noqa: BLE001 - keep ticking through a broker outage
                self.stderr.write(f"could not queue reconcile_index: {exc}")
            time.sleep(interval)
