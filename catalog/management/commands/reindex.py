from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.indexing import index_rebuild
from catalog.models import Product
from catalog.vector_index import IndexUnavailable
from core.openrouter import ProviderError


class Command(BaseCommand):
    help = (
        "Rebuild the vector index: fill a new Milvus collection from the database and swap "
        "the alias to it. Cached embeddings are reused."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--refit",
            action="store_true",
            help="fit a new TF-IDF vocabulary first (every sparse vector changes)",
        )

    def handle(self, *args, refit, verbosity, **options):
        with tqdm(
            total=Product.objects.count(),
            unit="product",
            desc="reindex",
            disable=verbosity < 1,
            file=self.stderr._out,
        ) as bar:
            try:
                run = index_rebuild(refit=refit, progress=bar.update)
            except (IndexUnavailable, ProviderError) as exc:
                raise CommandError(f"rebuild failed, the old index is unchanged: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Indexed {run.repaired} products into {run.collection} (alias swapped)."
            )
        )
