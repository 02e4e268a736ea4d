from pathlib import Path

from django.core.management.base import BaseCommand

from demo.performance import sample_performance_csv


class Command(BaseCommand):
    help = (
        "Write a channel performance CSV for the demo: made-up, steady figures (impressions, "
        "clicks, add-to-carts, orders, revenue) for every day of the last DAYS that each "
        "published image was live, each image with its own click-through rate. Import it with "
        "`manage.py import_performance FILE` or on Performance > Performance imports."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the CSV file to write")
        parser.add_argument("--days", type=int, default=30, help="how many days back (30)")

    def handle(self, *args, file: Path, days: int, **options):
        data = sample_performance_csv(days=days)
        file.write_bytes(data)
        rows = data.count(b"\n") - 1
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows} rows into {file}"))
