from django.core.management.base import BaseCommand, CommandError

from catalog.indexing import index_check
from catalog.vector_index import IndexUnavailable
from core.openrouter import ProviderError


class Command(BaseCommand):
    help = (
        "Compare the database with Milvus: rows missing from the index, stale (different "
        "data) and orphaned (no longer in the database). --repair fixes them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true")

    def handle(self, *args, repair, **options):
        try:
            drift = index_check(repair=repair)
        except (IndexUnavailable, ProviderError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"missing: {len(drift.missing)}  stale: {len(drift.stale)}  "
            f"orphaned: {len(drift.orphaned)}"
        )
        if repair:
            self.stdout.write(self.style.SUCCESS(f"repaired: {drift.repaired}"))
        elif drift.total:
            raise CommandError(f"{drift.total} rows differ; run check_index --repair")
