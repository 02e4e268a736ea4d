from django.core.management.base import BaseCommand, CommandError

from catalog.models import Product
from catalog.selectors import similar_bestsellers
from catalog.vector_index import IndexUnavailable


class Command(BaseCommand):
    help = "Print the bestsellers most similar to a product (Milvus hybrid search, RRF)."

    def add_arguments(self, parser):
        parser.add_argument("sku")
        parser.add_argument("--top-k", type=int, help="how many (default: RETRIEVAL_TOP_K)")
        parser.add_argument(
            "--min-sales",
            type=int,
            help="bestsellers sold more than this (default: CATALOG_BESTSELLER_MIN_SALES)",
        )

    def handle(self, *args, sku, top_k, min_sales, **options):
        try:
            product = Product.objects.get(sku=sku)
        except Product.DoesNotExist:
            raise CommandError(f"no product with sku {sku!r}") from None
        try:
            result = similar_bestsellers(product=product, top_k=top_k, min_sales=min_sales)
        except IndexUnavailable as exc:
            raise CommandError(str(exc)) from None

        self.stdout.write(
            f"{product.sku} ({product.category}, {product.style}, {product.season}): "
            f"top {result.top_k} with more than {result.min_sales:,} sales"
        )
        header = f"{'#':>2}  {'sku':<12} {'rrf score':>9} {'dense':>5} {'sparse':>6} {'sales':>7}  colour / style"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for rank, hit in enumerate(result.hits, start=1):
            p = hit.product
            self.stdout.write(
                f"{rank:>2}  {p.sku:<12} {hit.score:>9.5f} {hit.dense_rank or '-':>5} "
                f"{hit.sparse_rank or '-':>6} {p.sales_count:>7,}  {p.color} / {p.style}"
            )
        if result.note:
            self.stdout.write(self.style.WARNING(result.note))
