from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importer import (
    ImageSourceError,
    ImportKind,
    catalog_import,
    count_data_rows,
    images_for_path,
)


class Command(BaseCommand):
    help = (
        "Import a catalog CSV (historical catalog, new products or a sales update) with its "
        "images. Upserts by sku; a file with any error imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument(
            "--images", help="folder (or .zip) holding the images named in image_path"
        )
        parser.add_argument(
            "--kind",
            choices=ImportKind.values,
            help="the CSV format; detected from the header when omitted",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check and report, write nothing"
        )

    def handle(self, *args, file: Path, images, kind, dry_run, verbosity, **options):
        try:
            csv_data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            source = images_for_path(images)
        except ImageSourceError as exc:
            raise CommandError(str(exc)) from None

        with tqdm(
            total=count_data_rows(csv_data),
            unit="row",
            desc=file.name,
            disable=verbosity < 1,
            file=self.stderr._out,
        ) as bar:
            result = catalog_import(
                csv_data=csv_data, images=source, kind=kind, dry_run=dry_run, progress=bar.update
            )

        for error in result.errors:
            self.stderr.write(f"{file.name}: {error}")
        kind_label = result.kind.label.lower() if result.kind else "unknown format"
        if result.errors:
            raise CommandError(
                f"{len(result.errors)} error(s) in {file.name} ({kind_label}); nothing was imported. "
                f"Rows: {result.summary()}."
            )
        suffix = " (dry run: nothing was written)" if dry_run else ""
        self.stdout.write(
            self.style.SUCCESS(f"{file.name} ({kind_label}): {result.summary()}{suffix}")
        )
