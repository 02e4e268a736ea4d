from pathlib import Path

from django.core.management.base import BaseCommand

from demo.sample import write_sample_catalog


class Command(BaseCommand):
    help = (
        "Write a deterministic demo catalog into DIR: products.csv with images/ and images.zip, "
        "new_products.csv with new_products/ and new_products.zip, and sales_update.csv. "
        "Upload each CSV with its ZIP on the admin import page."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "directory", type=Path, help="folder to write into (created if missing)"
        )

    def handle(self, *args, directory: Path, **options):
        catalog = write_sample_catalog(directory)
        write = self.stdout.write
        write(f"{catalog.historical_count} historical products: {catalog.products_csv}")
        write(f"  images: {catalog.images[0].parent}/ and {catalog.images_zip}")
        write(f"{catalog.new_count} new products: {catalog.new_products_csv}")
        write(f"  images: {catalog.new_images[0].parent}/ and {catalog.new_products_zip}")
        write(f"{catalog.sales_updates} sales updates: {catalog.sales_update_csv}")
        write(self.style.SUCCESS(f"Wrote {len(catalog.files)} files into {catalog.directory}"))
